"""Storage URLs: how a path becomes one, and how one is shown to a human (never a password).

`shown` is the one function every message, log line, stored attribute and report uses for a
URL: user and password are dropped from the authority, `password=` (and similar) query values
are masked, percent-encoded and `@`-bearing passwords included. `redact` applies it to every URL
inside a text (an error message from a driver) and also masks the literal passwords the URL
carried, decoded or not, and PGPASSWORD's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode

SECRET_KEYS = ("password", "passwd", "pwd", "secret", "token", "sslpassword", "pass")
# A URL in a message: no trailing punctuation (the ":" or "," after it belongs to the sentence).
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]*[^\s'\"<>.,:;)\]]")
MASK = "***"


def _split(url: str) -> tuple[str, str, str, str]:
    """(scheme, userinfo, rest of the authority and path, query) of `scheme://...`."""
    scheme, _, rest = url.partition("://")
    rest, _, query = rest.partition("?")
    # The authority ends at the first "/" after the last "@" (a password may hold "/" or "@").
    at = rest.rfind("@", 0, rest.find("/", rest.rfind("@") + 1) if "@" in rest else 0)
    userinfo, host = (rest[:at], rest[at + 1 :]) if at >= 0 else ("", rest)
    return scheme, userinfo, host, query


def secrets_of(url: str) -> list[str]:
    """The passwords a URL carries (in its userinfo or its query), raw and decoded."""
    _, userinfo, _, query = _split(url)
    found = []
    if ":" in userinfo:
        found.append(userinfo.split(":", 1)[1])
    found += [v for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() in SECRET_KEYS]
    found += [v for k, v in re.findall(r"([A-Za-z_]+)=([^&]*)", query) if k.lower() in SECRET_KEYS]
    out = set()
    for value in found:
        if value:
            out |= {value, unquote(value)}
    return sorted(out, key=len, reverse=True)


def shown(url: str) -> str:
    """The URL for humans: no userinfo, secret query values masked."""
    if "://" not in url:
        return url
    scheme, _, host, query = _split(url)
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if k.lower() in SECRET_KEYS else v) for k, v in pairs], safe="*"
        )
    return f"{scheme}://{host}" + (f"?{query}" if query else "")


def redact(text: str, *urls: str) -> str:
    """`text` with every URL in it shown for humans and every secret of `urls` (and of the URLs
    in the text, and PGPASSWORD) masked wherever it appears."""
    secrets = [s for url in (*urls, *URL.findall(text)) for s in secrets_of(url)]
    if os.environ.get("PGPASSWORD"):
        secrets.append(os.environ["PGPASSWORD"])
    text = URL.sub(lambda m: shown(m.group(0)), text)
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 2:
            text = text.replace(secret, MASK)
    return text


def sqlite_url(path: Path | str) -> str:
    """`sqlite:///<absolute path>`, percent-encoded so that a `?`, `%` or `#` in a folder name
    stays part of the path (SQLAlchemy decodes it back)."""
    return "sqlite:///" + quote(str(Path(path).expanduser().absolute()), safe="/")


def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///` URL (decoded), or None for other URLs."""
    if not url.startswith("sqlite:///"):
        return None
    from sqlalchemy.engine import make_url

    return Path(make_url(url).database or "")
