"""The official ``elasticsearch`` and ``opensearch-py`` clients, unchanged, signing in to a node
with ``--security`` served over HTTPS: API keys (``id:key`` pair and encoded), users' passwords,
the 403 of a role that may not cancel and the 401 (with its challenges) of no credentials."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from elasticsearch import AuthenticationException, AuthorizationException, Elasticsearch
from nodeproc import ADMIN_PASSWORD, NodeProcess
from opensearchpy import AuthenticationException as OsAuthenticationException
from opensearchpy import AuthorizationException as OsAuthorizationException
from opensearchpy import OpenSearch
from sleeps import Sleeps
from tlsfiles import TlsFiles

# The tasks APIs are "technical preview" in the 9.x client, which warns on every call.
pytestmark = pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")

CANCEL_ACTION = "cluster:admin/tasks/cancel"


@dataclass(frozen=True)
class ApiKey:
    id: str
    api_key: str
    encoded: str


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> Iterator[NodeProcess]:
    """One node with ``--security`` serving HTTPS; its helper client signs in as ``admin``."""
    with NodeProcess(
        tmp_path_factory.mktemp("secure-https-node"), node_name="secure-https", secure=True,
        verify=tls_files.trusting(),
        extra_args=["--cert", str(tls_files.cert), "--key", str(tls_files.key)],
    ) as proc:
        yield proc


def create_key(node: NodeProcess, name: str, role: str) -> ApiKey:
    answer = node.post("/_security/api_key", json={"name": name, "role": role})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return ApiKey(body["id"], body["api_key"], body["encoded"])


@pytest.fixture(scope="module")
def manage_key(node: NodeProcess) -> ApiKey:
    return create_key(node, "compat-manage", "manage")


@pytest.fixture(scope="module")
def monitor_key(node: NodeProcess) -> ApiKey:
    return create_key(node, "compat-monitor", "monitor")


@pytest.fixture
def sleeps(node: NodeProcess) -> Iterator[Sleeps]:
    with Sleeps(node) as tracker:
        yield tracker


def es_client(node: NodeProcess, tls: TlsFiles, **auth: Any) -> Elasticsearch:
    return Elasticsearch(node.url, ca_certs=str(tls.ca), request_timeout=30, **auth)


def os_client(node: NodeProcess, tls: TlsFiles, **auth: Any) -> OpenSearch:
    return OpenSearch(node.url, use_ssl=True, verify_certs=True, ca_certs=str(tls.ca), timeout=30,
                      **auth)


def listed_ids(body: Any) -> set[str]:
    return {f"{t['node']}:{t['id']}" for t in body["tasks"]}


# --------------------------------------------------------------------------------------------
# elasticsearch


@pytest.fixture(params=["api_key pair", "api_key encoded", "basic_auth"])
def es_signed_in(
    request: pytest.FixtureRequest, node: NodeProcess, tls_files: TlsFiles, manage_key: ApiKey
) -> Iterator[tuple[Elasticsearch, str]]:
    """A client signing in each way the ES client offers, and the authentication type ES
    reports for it."""
    auth: dict[str, Any]
    if request.param == "api_key pair":
        auth, kind = {"api_key": (manage_key.id, manage_key.api_key)}, "api_key"
    elif request.param == "api_key encoded":
        auth, kind = {"api_key": manage_key.encoded}, "api_key"
    else:
        auth, kind = {"basic_auth": ("admin", ADMIN_PASSWORD)}, "realm"
    client = es_client(node, tls_files, **auth)
    try:
        yield client, kind
    finally:
        client.close()


def test_es_client_lists_gets_and_cancels(
    es_signed_in: tuple[Elasticsearch, str], sleeps: Sleeps
) -> None:
    es, kind = es_signed_in
    assert es.security.authenticate()["authentication_type"] == kind
    task_id = sleeps.start(duration="10m")

    listed = es.tasks.list(actions="test:sleep", group_by="none", detailed=True)
    assert listed.meta.status == 200
    assert task_id in listed_ids(listed)

    got = es.tasks.get(task_id=task_id)
    assert got["completed"] is False
    assert got["task"]["headers"]["user.name"] == "admin"  # who started it

    cancelled = es.tasks.cancel(task_id=task_id, wait_for_completion=True)
    node_id = task_id.split(":")[0]
    assert cancelled["nodes"][node_id]["tasks"][task_id]["cancelled"] is True
    assert es.tasks.get(task_id=task_id)["completed"] is True


def test_es_client_with_a_monitor_key_lists_but_may_not_cancel(
    node: NodeProcess, tls_files: TlsFiles, monitor_key: ApiKey, sleeps: Sleeps
) -> None:
    task_id = sleeps.start(duration="10m")
    with es_client(node, tls_files, api_key=(monitor_key.id, monitor_key.api_key)) as es:
        assert task_id in listed_ids(es.tasks.list(actions="test:sleep", group_by="none"))
        with pytest.raises(AuthorizationException) as denied:
            es.tasks.cancel(task_id=task_id)
    assert denied.value.meta.status == 403
    error = denied.value.body["error"]
    assert error["type"] == "security_exception"
    assert CANCEL_ACTION in error["reason"]
    assert monitor_key.id in error["reason"]
    assert node.get(f"/_tasks/{task_id}").json()["completed"] is False  # still running


def test_es_client_without_credentials_gets_401_with_challenges(
    node: NodeProcess, tls_files: TlsFiles
) -> None:
    with es_client(node, tls_files) as es, pytest.raises(AuthenticationException) as refused:
        es.tasks.list()
    assert refused.value.meta.status == 401
    assert refused.value.body["error"]["type"] == "security_exception"
    # The two challenges arrive as two header lines; the client's headers join them.
    challenges = refused.value.meta.headers["www-authenticate"]
    assert "ApiKey" in challenges
    assert 'Basic realm="security"' in challenges
    assert refused.value.meta.headers["x-elastic-product"] == "Elasticsearch"


# --------------------------------------------------------------------------------------------
# opensearch-py


@pytest.fixture(params=["http_auth", "ApiKey header"])
def os_signed_in(
    request: pytest.FixtureRequest, node: NodeProcess, tls_files: TlsFiles, manage_key: ApiKey
) -> Iterator[OpenSearch]:
    if request.param == "http_auth":
        client = os_client(node, tls_files, http_auth=("admin", ADMIN_PASSWORD))
    else:
        client = os_client(node, tls_files,
                           headers={"Authorization": f"ApiKey {manage_key.encoded}"})
    try:
        yield client
    finally:
        client.close()


def test_os_client_lists_gets_and_cancels(os_signed_in: OpenSearch, sleeps: Sleeps) -> None:
    client = os_signed_in
    task_id = sleeps.start(duration="10m")
    assert task_id in listed_ids(client.tasks.list(actions="test:sleep", group_by="none"))
    assert client.tasks.get(task_id=task_id)["completed"] is False
    cancelled = client.tasks.cancel(task_id=task_id, params={"wait_for_completion": "true"})
    node_id = task_id.split(":")[0]
    assert cancelled["nodes"][node_id]["tasks"][task_id]["cancelled"] is True
    assert client.tasks.get(task_id=task_id)["completed"] is True


def test_os_client_with_a_monitor_key_may_not_cancel(
    node: NodeProcess, tls_files: TlsFiles, monitor_key: ApiKey, sleeps: Sleeps
) -> None:
    task_id = sleeps.start(duration="10m")
    client = os_client(node, tls_files, headers={"Authorization": f"ApiKey {monitor_key.encoded}"})
    try:
        assert task_id in listed_ids(client.tasks.list(actions="test:sleep", group_by="none"))
        with pytest.raises(OsAuthorizationException) as denied:
            client.tasks.cancel(task_id=task_id)
    finally:
        client.close()
    assert denied.value.status_code == 403
    info = denied.value.info
    assert isinstance(info, dict)
    assert info["error"]["type"] == "security_exception"
    assert CANCEL_ACTION in info["error"]["reason"]


@pytest.mark.parametrize("auth", ["none", "wrong password"])
def test_os_client_without_valid_credentials_gets_401(
    node: NodeProcess, tls_files: TlsFiles, auth: str
) -> None:
    extra: dict[str, Any] = {} if auth == "none" else {"http_auth": ("admin", "not-the-password")}
    client = os_client(node, tls_files, **extra)
    try:
        with pytest.raises(OsAuthenticationException) as refused:
            client.tasks.list()
    finally:
        client.close()
    assert refused.value.status_code == 401
    info = refused.value.info
    assert isinstance(info, dict)
    assert info["error"]["type"] == "security_exception"
