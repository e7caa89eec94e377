"""The cluster store's tables, written once for both SQLite and PostgreSQL.

JSON values are kept as compact TEXT and timestamps as BIGINT epoch milliseconds, so the same
Core statements run unchanged on either database.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "SCHEMA_VERSION_KEY",
    "api_keys",
    "cluster_metadata",
    "metadata",
    "nodes",
    "task_results",
    "users",
]

SCHEMA_VERSION_KEY = "schema_version"
"""The ``cluster_metadata`` key of the store's schema version (see ``migrations``)."""

metadata = MetaData()

cluster_metadata = Table(
    "cluster_metadata",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
"""Key/value facts set once for the whole cluster: secret, uuid, schema_version."""

nodes = Table(
    "nodes",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("http_address", String(255), nullable=False),
    Column("roles", Text, nullable=False),
    Column("attributes", Text, nullable=False),
    Column("version", String(64), nullable=False),
    Column("last_seen_millis", BigInteger, nullable=False),
    Column("started_millis", BigInteger, nullable=False),
)
"""One row per member node, refreshed by its heartbeat."""

task_results = Table(
    "task_results",
    metadata,
    Column("task_id", String(128), primary_key=True),
    Column("node_id", String(64), nullable=False),
    Column("task_seq", BigInteger, nullable=False),
    Column("completed", Boolean, nullable=False),
    Column("task", Text, nullable=False),
    Column("response", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("started_millis", BigInteger, nullable=False),
    Column("stored_millis", BigInteger, nullable=False),
    Index("ix_task_results_node_completed", "node_id", "completed"),
    Index("ix_task_results_node_seq", "node_id", "task_seq"),
    Index("ix_task_results_started_millis", "started_millis"),
    Index("ix_task_results_stored_millis", "stored_millis"),
)
"""The background-task journal and outcomes: a row is journaled at start, completed at the end."""

users = Table(
    "users",
    metadata,
    Column("username", String(255), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(32), nullable=False),
    Column("created_millis", BigInteger, nullable=False),
)
"""People who sign in with a password (HTTP Basic); the hash is scrypt's, never the password."""

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("key_hash", String(128), nullable=False),
    Column("role", String(32), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("created_millis", BigInteger, nullable=False),
    Column("expires_millis", BigInteger, nullable=True),
    Column("invalidated_millis", BigInteger, nullable=True),
    Index("ix_api_keys_name", "name"),
)
"""API keys (``Authorization: ApiKey``): only a hash of the secret part is kept."""
