"""A throwaway PostgreSQL server for tests: initdb into a temporary folder, start on a free port.

PostgreSQL refuses to run as root, and tests here run as root: then the server's programs run as
the ``postgres`` system user (``nobody`` when there is none) through ``runuser``, in a folder that
user owns. Clients (``createdb``, asyncpg) connect over TCP as the trusted ``postgres`` role.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresServer", "PostgresUnavailableError", "find_postgres_bin"]

_SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres", "createdb")
_START_ATTEMPTS = 3
_START_TIMEOUT_SECONDS = 60
# Nothing here needs to survive a crash: trade durability for speed.
_SERVER_SETTINGS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=200 -c shared_buffers=32MB"
)


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL's programs are missing or the server would not start."""


def find_postgres_bin() -> Path:
    """The folder holding initdb, pg_ctl and createdb: on PATH, else the newest Debian install."""
    on_path = shutil.which("initdb")
    if on_path is not None:
        folder = Path(on_path).resolve().parent
        if all((folder / name).exists() for name in _SERVER_PROGRAMS):
            return folder
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: _version_key(p.parent.name),
        reverse=True,
    )
    for folder in installed:
        if all((folder / name).exists() for name in _SERVER_PROGRAMS):
            return folder
    raise PostgresUnavailableError(
        "PostgreSQL server programs (initdb, pg_ctl, postgres, createdb) were not found on PATH "
        "or in /usr/lib/postgresql/*/bin; install them (Debian: apt-get install postgresql) "
        "- .ci/run does this on CI"
    )


class PostgresServer:
    """One PostgreSQL server in a temporary folder; :meth:`create_database` gives fresh databases."""

    def __init__(self) -> None:
        self.bin = find_postgres_bin()
        self.port = 0
        self.user = "postgres"
        self._run_as = _unprivileged_user() if os.geteuid() == 0 else None
        self._base: Path | None = None
        self._names = itertools.count(1)
        self._started = False

    @property
    def data_dir(self) -> Path:
        return self._folder / "data"

    @property
    def log_file(self) -> Path:
        return self._folder / "server.log"

    def start(self) -> None:
        """initdb and start the server; on failure nothing is left running or on disk."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        # Not under pytest's tmp folders: those are private to root, and the server's user
        # must be able to reach its own data folder.
        self._base = Path(tempfile.mkdtemp(prefix="taskwarden-pg-"))
        if self._run_as is not None:
            os.chown(self._base, self._run_as.pw_uid, self._run_as.pw_gid)
        self._server_cmd(
            "initdb", "-D", str(self.data_dir), "-A", "trust", "-U", self.user,
            "-E", "UTF8", "--locale=C", "--no-sync",
        )
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.port = _free_port()
            options = (
                f"-p {self.port} -k {self._folder} -c listen_addresses=127.0.0.1 {_SERVER_SETTINGS}"
            )
            try:
                self._server_cmd(
                    "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
                    "-w", "-t", str(_START_TIMEOUT_SECONDS), "start",
                )
            except PostgresUnavailableError:
                # Most likely another process took the port between probing and binding.
                if attempt == _START_ATTEMPTS:
                    raise
                continue
            self._started = True
            return

    def stop(self) -> None:
        try:
            if self._started:
                self._server_cmd("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
                self._started = False
        finally:
            if self._base is not None:
                shutil.rmtree(self._base, ignore_errors=True)
                self._base = None

    def pause(self) -> None:
        """Stop the server but keep its data: the store is down until :meth:`resume`."""
        self._server_cmd("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        self._started = False

    def resume(self) -> None:
        """Start the paused server again on the same port."""
        options = f"-p {self.port} -k {self._folder} -c listen_addresses=127.0.0.1 {_SERVER_SETTINGS}"
        self._server_cmd(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
            "-w", "-t", str(_START_TIMEOUT_SECONDS), "start",
        )
        self._started = True

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "tw") -> str:
        """``CREATE DATABASE`` a new, empty database and return its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        _run(
            [
                str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                "-U", self.user, name,
            ],
            cwd=self._folder,
            what=f"createdb {name}",
        )
        return self.url(name)

    @property
    def _folder(self) -> Path:
        if self._base is None:
            raise PostgresUnavailableError("the PostgreSQL server is not started")
        return self._base

    def _server_cmd(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self._run_as is not None:
            command = ["runuser", "-u", self._run_as.pw_name, "--", *command]
        _run(command, cwd=self._folder, what=program, log_file=self.log_file)


def _run(command: list[str], *, cwd: Path, what: str, log_file: Path | None = None) -> None:
    # cwd: the server's user may not be allowed into the test runner's working directory.
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=_START_TIMEOUT_SECONDS + 30,
            check=False, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PostgresUnavailableError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        log = ""
        if log_file is not None:
            with contextlib.suppress(OSError):
                log = "\n--- server log (tail) ---\n" + "".join(
                    log_file.read_text(errors="replace").splitlines(keepends=True)[-30:]
                )
        raise PostgresUnavailableError(
            f"{what} exited {done.returncode}: {' '.join(command)}\n{done.stdout}{done.stderr}{log}"
        )


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailableError(
        "running as root, and neither a [postgres] nor a [nobody] user exists to run PostgreSQL as"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())

