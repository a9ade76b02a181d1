"""A real PostgreSQL server on loopback for the tests, started from Debian's binaries."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str
    database: str

    def env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": self.password}

    def overrides(self) -> list[str]:
        return [
            "storage=postgres",
            f"storage.host={self.host}",
            f"storage.port={self.port}",
            f"storage.user={self.user}",
            f"storage.database={self.database}",
        ]


def bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start():
    """initdb + pg_ctl start with password authentication: (server, stop(), log path)."""
    bins = bindir()
    assert bins is not None
    base = Path(tempfile.mkdtemp(prefix="hgsearch-pg-"))
    as_root = os.geteuid() == 0
    password = "pw-" + secrets.token_hex(8)
    (base / "pw").write_text(password + "\n")
    if as_root:
        shutil.chown(base, "postgres")
        shutil.chown(base / "pw", "postgres")

    def run(*cmd: str) -> None:
        full = ["runuser", "-u", "postgres", "--", *cmd] if as_root else list(cmd)
        subprocess.run(full, check=True, capture_output=True, timeout=120)

    run(
        str(bins / "initdb"),
        "-D",
        str(base / "data"),
        "-U",
        "hgsearch",
        "--auth=scram-sha-256",
        f"--pwfile={base / 'pw'}",
        "--no-sync",
    )
    port = _free_port()
    opts = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections=60"
    run(
        str(bins / "pg_ctl"),
        "-D",
        str(base / "data"),
        "-l",
        str(base / "log"),
        "-o",
        opts,
        "-w",
        "start",
    )
    import psycopg2

    con = psycopg2.connect(
        host="127.0.0.1", port=port, user="hgsearch", password=password, dbname="postgres"
    )
    con.autocommit = True
    con.cursor().execute("CREATE DATABASE hgsearch")
    con.close()

    def stop() -> None:
        run(str(bins / "pg_ctl"), "-D", str(base / "data"), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)

    return Server("127.0.0.1", port, "hgsearch", password, "hgsearch"), stop, base / "log"
