"""A throw-away PostgreSQL cluster on its own loopback port, which a fault test may stop and start at will.

Never the shared server: initdb into a temporary folder, pg_ctl on a free port, run as the postgres user when
root (PostgreSQL refuses to run as root). Skips with the reason when the server binaries are absent.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _as_pg(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.getuid() == 0 else cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """One running cluster: `url` to its `postgres` database; `stop()` / `start()` restart it."""

    bindir: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self, name: str) -> str:
        """Create an empty database on the cluster and return its URL."""
        from sqlalchemy import create_engine

        admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_pg([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args]), check=True, capture_output=True)

    def start(self) -> None:
        self._ctl("-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off", "-l", str(self.data / "log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")

    def remove(self) -> None:
        """Stop the cluster at once and delete its files."""
        self.stop("immediate")
        shutil.rmtree(self.data.parent, ignore_errors=True)


def make_cluster() -> Cluster:
    """initdb a new cluster in a fresh temporary folder and start it; skips (with why) when the binaries are absent.

    The folder is outside pytest's tmp_path, whose 0700 parents the postgres user cannot enter.
    """
    bindir = _bindir()
    if bindir is None or shutil.which("runuser") is None and os.getuid() == 0:
        pytest.skip("a throw-away PostgreSQL cluster needs the server binaries (/usr/lib/postgresql/*/bin/initdb)")
    root = Path(tempfile.mkdtemp(prefix="verifier-pg-"))
    data = root / "pgdata"
    data.mkdir(mode=0o700)
    if os.getuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
        os.chmod(root, 0o755)
    subprocess.run(_as_pg([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]), check=True, capture_output=True)
    cluster = Cluster(bindir, data, _free_port())
    cluster.start()
    return cluster
