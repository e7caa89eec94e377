"""The cluster store: membership, the cluster secret, background-task results, users and API keys, in SQL."""

from taskwarden.store.credentials import ApiKeyRecord, CredentialStore, UserRecord
from taskwarden.store.engine import async_store_url
from taskwarden.store.migrations import schema_version
from taskwarden.store.store import ClusterStore, NodeRecord, StoredResult

__all__ = [
    "ApiKeyRecord",
    "ClusterStore",
    "CredentialStore",
    "NodeRecord",
    "StoredResult",
    "UserRecord",
    "async_store_url",
    "schema_version",
]
