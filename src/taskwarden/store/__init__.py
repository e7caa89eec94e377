"""The cluster store: membership, the cluster secret and background-task results, in SQL."""

from taskwarden.store.engine import async_store_url
from taskwarden.store.migrations import schema_version
from taskwarden.store.store import ClusterStore, NodeRecord, StoredResult

__all__ = ["ClusterStore", "NodeRecord", "StoredResult", "async_store_url", "schema_version"]
