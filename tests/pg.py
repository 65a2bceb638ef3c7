"""A throwaway PostgreSQL server for the store's tests, from Debian's packages.

initdb makes a cluster in a fresh temporary folder; pg_ctl starts it on a free
port of 127.0.0.1 (its socket in the same folder, so it never meets a system
server); it is stopped by the pid in its postmaster.pid, and the folder removed.
As root, the server runs as the `postgres` user (PostgreSQL refuses to run as
root). Every step has a time budget. `missing()` says why no server can be
started here (no binaries, no postgres user), or None.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BUDGET = 60  # seconds for initdb, a start, a restart or a stop


def _bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing() -> str | None:
    """Why no throwaway server can run on this machine, or None."""
    if _bindir() is None:
        return "no PostgreSQL binaries (initdb, pg_ctl): apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root but there is no postgres user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One running throwaway server; `url(name)` is a database on it."""

    def __init__(self) -> None:
        bindir = _bindir()
        assert bindir is not None, missing()
        self.bin = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="mmfuzz-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user is not None:
            shutil.chown(self.folder, self.user)
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "--no-sync", "-E", "UTF8")
            self.start()
        except BaseException:
            self.close()
            raise

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([str(self.bin / tool), *args], user=self.user, check=True,
                       timeout=BUDGET, stdin=subprocess.DEVNULL, capture_output=True,
                       cwd=self.folder)

    def _ctl(self, action: str, *args: str) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.folder} -c fsync=off")
        self._run("pg_ctl", action, "-D", str(self.data), "-w", "-t", str(BUDGET),
                  "-l", str(self.folder / "log"), "-o", options, *args)

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        """pg_ctl restart: every connection is cut, the server is back when this returns."""
        self._ctl("restart", "-m", "fast")

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """A fast shutdown by the postmaster's pid (SIGINT), SIGKILL past the budget."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + BUDGET
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.close()
