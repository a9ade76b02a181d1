"""Placeholder replaced below."""


class StorageError(RuntimeError):
    """A storage the tool cannot open or write."""
