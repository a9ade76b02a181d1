"""hourglass-search: Hourglass vs conventional residual MLPs under parameter budgets.

One installed package; the repository's folders are its subpackages: `hgsearch.conf` (Hydra
configs), `hgsearch.search` (sample, train, record), `hgsearch.models` (the families and their
exact parameter counts) and `hgsearch.analysis` (frontiers, plots, exports).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hgsearch")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"
