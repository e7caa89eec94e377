"""Shared fixtures: real taskwarden nodes started as subprocesses on free loopback ports, and a
throwaway PostgreSQL server for the store's tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "support"))

from nodeproc import NodeProcess, support_pythonpath
from postgres import PostgresServer, PostgresUnavailableError
from tlsfiles import TlsFiles, write_tls_files


@pytest.fixture(scope="session")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One node for the whole session: tests that only read or clean up after themselves."""
    with NodeProcess(tmp_path_factory.mktemp("shared-node"), node_name="shared") as node:
        yield node


@pytest.fixture(scope="session")
def secure_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One node with ``--security`` (and the actions of ``tw_user_app``) for the session; its
    ``client`` signs in as ``admin``."""
    with NodeProcess(tmp_path_factory.mktemp("secure-node"), node_name="secure", secure=True,
                     extra_args=["--app", "tw_user_app"],
                     env={"PYTHONPATH": support_pythonpath()}) as node:
        yield node


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A test CA and a certificate+key signed by it for 127.0.0.1/localhost (PEM files), made
    once for the session; plus an unrelated CA that does not trust that certificate."""
    return write_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    """A fresh node of its own for one test."""
    with NodeProcess(tmp_path / "node", node_name="solo") as proc:
        yield proc


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session, started on first use.

    Fails (never skips) without PostgreSQL's programs: CI installs them, so a missing server is
    a broken setup, not a reason to drop the PostgreSQL half of the store tests.
    """
    problem = ""
    try:
        server = PostgresServer()
        server.start()
    except PostgresUnavailableError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(f"cannot start a throwaway PostgreSQL server: {problem}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """A database created once for the session; tests that need isolation use fresh_postgres_url."""
    return postgres_server.create_database("session")


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> str:
    """A new, empty database of this test's own (``CREATE DATABASE`` on the session's server)."""
    return postgres_server.create_database()
