"""A throwaway PostgreSQL cluster for the tests and benchmarks.

:class:`PgCluster` runs Debian's PostgreSQL 15 binaries (``initdb``, ``pg_ctl``) on a new
data folder, listening only on a Unix socket in that folder, with ``trust`` logins (no
password). PostgreSQL refuses to run as root, and CI runs as root: then the server runs as
the ``postgres`` system user (``runuser``), in a folder that user owns. Each catalog test
gets a database of its own (:meth:`PgCluster.new_database`).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

#: Where Debian installs the server binaries.
BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"


def server_bin() -> Path | None:
    """The newest installed PostgreSQL server's ``bin`` folder, or ``None``."""
    found = sorted(glob.glob(BIN_GLOB), key=lambda p: int(Path(p).parent.name))
    found = [p for p in found if (Path(p) / "initdb").exists()]
    if found:
        return Path(found[-1])
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def database_name(url: str) -> str:
    """The database of a cluster URL (``postgresql:///<name>?host=...``)."""
    return url.split("///", 1)[1].split("?", 1)[0]


class PgCluster:
    """A PostgreSQL server on a temporary data folder (stop it with :meth:`stop`).

    Args:
        fsync: let the server fsync (off makes the tests faster; the benchmark keeps it on).
    """

    def __init__(self, *, fsync: bool = False) -> None:
        bin_dir = server_bin()
        if bin_dir is None:
            raise RuntimeError(
                "PostgreSQL's server is not installed (Debian: apt-get install postgresql; "
                "`make system-deps` does it)"
            )
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="siammatch-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self._as_root = os.geteuid() == 0
        if self._as_root:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.superuser = SERVER_USER
        else:
            self.superuser = pwd.getpwuid(os.geteuid()).pw_name
        self._names = itertools.count()
        self._run(["initdb", "-D", str(self.data), "-A", "trust", "-E", "UTF8", "--no-sync"])
        options = f"-k {self.socket_dir} -c listen_addresses='' -c max_connections=200"
        if not fsync:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = str(self.root / "server.log")
        data = str(self.data)
        self._run(["pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start"])

    def _run(self, argv: list[str]) -> None:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self._as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {result.stderr.strip() or result.stdout}")

    def url(self, database: str = "postgres", *, user: str | None = None) -> str:
        """The Unix-socket URL of ``database`` as ``user`` (default: the superuser)."""
        return f"postgresql:///{database}?host={self.socket_dir}&user={user or self.superuser}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one statement as the superuser, outside a transaction."""
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self, prefix: str = "cat") -> str:
        """Create an empty database; returns its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (closing its connections)."""
        name = database_name(url)
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        try:
            self._run(["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
