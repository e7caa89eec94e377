"""The Python clients' credentials (``api_key``, ``basic_auth``), TLS settings and security methods,
against a real node started with ``--security``."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from nodeproc import ADMIN_PASSWORD, NodeProcess
from tlsfiles import TlsFiles

from taskwarden._client_auth import authorization_of
from taskwarden.client import AsyncClient, Client
from taskwarden.errors import AuthenticationError, ResourceNotFoundError, SecurityError

ADMIN = ("admin", ADMIN_PASSWORD)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_api_key_as_tuple_or_encoded_and_basic_auth(secure_node: NodeProcess) -> None:
    with Client(secure_node.url, basic_auth=ADMIN) as admin:
        assert admin.authenticate()["authentication_type"] == "realm"
        key = admin.create_api_key(unique("client"), role="monitor")

    for credentials in ((key["id"], key["api_key"]), key["encoded"]):
        with Client(secure_node.url, api_key=credentials) as client:
            me = client.authenticate()
            assert (me["username"], me["roles"], me["authentication_type"]) == (
                "admin", ["monitor"], "api_key"
            )
            assert me["api_key"]["id"] == key["id"]
            assert "nodes" in client.list_tasks()
            with pytest.raises(SecurityError) as refused:  # monitor may read, not cancel
                client.cancel(actions="test:*")
            assert type(refused.value) is SecurityError
            assert "cluster:admin/tasks/cancel" in refused.value.reason


def test_wrong_or_missing_credentials_raise_authentication_error(secure_node: NodeProcess) -> None:
    with Client(secure_node.url, basic_auth=ADMIN) as admin:
        key = admin.create_api_key(unique("client"))
    for kwargs in ({"api_key": (key["id"], "not-the-secret")}, {"api_key": "bm90IGEga2V5"},
                   {"basic_auth": ("admin", "not-the-password")}, {}):
        with Client(secure_node.url, **kwargs) as client, pytest.raises(AuthenticationError) as err:
            client.list_tasks()
        assert err.value.http_status == 401 and err.value.type == "security_exception", kwargs


def test_api_keys_are_created_listed_and_invalidated(secure_node: NodeProcess) -> None:
    name = unique("client")
    with Client(secure_node.url, basic_auth=ADMIN) as admin:
        first = admin.create_api_key(name, role="manage", expiration="1d")
        second = admin.create_api_key(name, role="monitor")
        assert isinstance(first["expiration"], int) and "expiration" not in second

        listed = admin.api_keys(name=name)["api_keys"]
        assert [(k["id"], k["role"], k["invalidated"]) for k in listed] == [
            (first["id"], "manage", False), (second["id"], "monitor", False),
        ]
        assert admin.api_keys(id=first["id"])["api_keys"][0]["expiration"] == first["expiration"]
        assert {k["id"] for k in admin.api_keys(username="admin", owner=True)["api_keys"]} >= {
            first["id"], second["id"]
        }

        done = admin.invalidate_api_keys(ids=[first["id"]])
        assert (done["invalidated_api_keys"], done["previously_invalidated_api_keys"]) == (
            [first["id"]], []
        )
        again = admin.invalidate_api_keys(name=name)
        assert (again["invalidated_api_keys"], again["previously_invalidated_api_keys"]) == (
            [second["id"]], [first["id"]]
        )
    with Client(secure_node.url, api_key=first["encoded"]) as revoked, \
            pytest.raises(AuthenticationError, match="credentials"):
        revoked.list_tasks()


def test_users_are_set_listed_and_deleted(secure_node: NodeProcess) -> None:
    username = unique("client-user")
    with Client(secure_node.url, basic_auth=ADMIN) as admin:
        assert admin.put_user(username, password="first-password", roles=["monitor"]) == {
            "created": True
        }
        assert admin.put_user(username, password="second-password", roles="manage") == {
            "created": False
        }
        assert admin.users(username)[username]["roles"] == ["manage"]
        assert {"admin", username} <= set(admin.users())
        with Client(secure_node.url, basic_auth=(username, "second-password")) as user:
            assert user.authenticate()["roles"] == ["manage"]

        assert admin.delete_user(username) == {"found": True}
        with pytest.raises(ResourceNotFoundError, match=rf"user \[{username}\] not found"):
            admin.users(username)
        with pytest.raises(ResourceNotFoundError, match=rf"user \[{username}\] not found"):
            admin.delete_user(username)


async def test_the_async_client_has_the_same_security_methods(secure_node: NodeProcess) -> None:
    name, username = unique("async"), unique("async-user")
    async with AsyncClient(secure_node.url, basic_auth=ADMIN) as admin:
        key = await admin.create_api_key(name, role="manage")
        assert [k["id"] for k in (await admin.api_keys(name=name))["api_keys"]] == [key["id"]]
        assert (await admin.put_user(username, password="a-password", roles=["monitor"]))["created"]
        assert (await admin.users(username))[username]["roles"] == ["monitor"]
        assert await admin.delete_user(username) == {"found": True}
        with pytest.raises(ResourceNotFoundError):
            await admin.users(username)
        async with AsyncClient(secure_node.url, api_key=(key["id"], key["api_key"])) as by_key:
            assert (await by_key.authenticate())["api_key"]["name"] == name
            done = await admin.invalidate_api_keys(ids=[key["id"]])
            assert done["invalidated_api_keys"] == [key["id"]]
            with pytest.raises(AuthenticationError):
                await by_key.list_tasks()


def test_credentials_are_sent_the_elasticsearch_way() -> None:
    assert authorization_of(("id1", "secret"), None) == "ApiKey " + base64.b64encode(
        b"id1:secret"
    ).decode()
    assert authorization_of("ZW5jb2RlZA==", None) == "ApiKey ZW5jb2RlZA=="
    assert authorization_of(None, ("élodie", "pass:word")) == "Basic " + base64.b64encode(
        "élodie:pass:word".encode()
    ).decode()
    assert authorization_of(None, None) is None


@pytest.mark.parametrize("kwargs", [
    {"api_key": "a2V5", "basic_auth": ("u", "p")},
    {"api_key": ("only-the-id",)},
    {"api_key": ""},
    {"basic_auth": "user:password"},
    {"api_key": "a2V5", "headers": {"authorization": "Basic eDp5"}},
    {"ca_certs": "ca.pem", "verify_certs": False},
])
def test_contradictory_or_malformed_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Client("http://127.0.0.1:1", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AsyncClient("http://127.0.0.1:1", **kwargs)  # type: ignore[arg-type]


def test_https_is_checked_against_the_given_ca_by_client_and_cli(
    tmp_path: Path, tls_files: TlsFiles
) -> None:
    node = NodeProcess(tmp_path / "node", extra_args=tls_files.serve_args(),
                       verify=tls_files.trusting())
    node.start()
    try:
        assert node.url.startswith("https://")
        with Client(node.url, ca_certs=tls_files.ca) as client:
            assert "nodes" in client.nodes()
        with Client(node.url) as untrusting, \
                pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.nodes()  # the test CA is not among the system's
        with Client(node.url, verify_certs=False) as unchecked:
            assert "nodes" in unchecked.nodes()

        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKWARDEN_")}
        cli = subprocess.run(
            [sys.executable, "-m", "taskwarden", "cat", "tasks", "--url", node.url,
             "--ca-cert", str(tls_files.ca)],
            env=env, text=True, capture_output=True, timeout=60, check=False,
        )
        assert cli.returncode == 0, cli.stderr
        assert "cluster:monitor/tasks/lists" in cli.stdout
    finally:
        node.stop()
