"""The cluster store: membership, the cluster secret and background-task results, in SQL."""

from taskwarden.store.engine import async_store_url
from taskwarden.store.schema import SCHEMA_VERSION
from taskwarden.store.store import ClusterStore, NodeRecord, StoredResult

__all__ = ["SCHEMA_VERSION", "ClusterStore", "NodeRecord", "StoredResult", "async_store_url"]
