"""Security on a real node started with ``--security``: who gets in (401), who may do what (403),
API keys and users through ``/_security``, and the caller recorded in the task headers."""

from __future__ import annotations

import base64
import re
import sqlite3
from typing import Any

import httpx
import pytest
from apicheck import SLEEP_PATH, assert_es_error
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from nodeproc import ADMIN_PASSWORD, NodeProcess

from taskwarden.cluster.transport import INTERNAL_PREFIX
from taskwarden.http.app import API_ROUTES

SECURITY = "security_exception"
BASIC_CHALLENGE = 'Basic realm="security" charset="UTF-8"'
PUBLIC_ROUTES = [
    (method, route.path)
    for route in API_ROUTES if not route.path.startswith(INTERNAL_PREFIX)
    for method in route.methods
]
PATH_VALUES = {"task_id": "abc:1", "node_id": "_local", "action": "test:sleep", "username": "x"}


def api_key_header(encoded: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey {encoded}"}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def anonymous(node: NodeProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request without credentials (the node's helper client signs in as admin)."""
    return httpx.request(method, node.url + path, timeout=30, **kwargs)


def create_key(node: NodeProcess, name: str, role: str, **extra: Any) -> dict[str, Any]:
    response = node.post("/_security/api_key", json={"name": name, "role": role, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def keys(secure_node: NodeProcess) -> dict[str, dict[str, str]]:
    """One API key per role."""
    return {role: create_key(secure_node, f"{role}-key", role) for role in
            ("monitor", "manage", "admin")}


def as_role(node: NodeProcess, keys: dict[str, dict[str, str]], role: str) -> httpx.Client:
    return httpx.Client(base_url=node.url, timeout=30,
                        headers=api_key_header(keys[role]["encoded"]))


@pytest.mark.parametrize(("method", "path"), PUBLIC_ROUTES, ids=lambda v: str(v))
def test_every_route_wants_credentials(secure_node: NodeProcess, method: str, path: str) -> None:
    response = anonymous(secure_node, method, path.format_map(PATH_VALUES))
    uri = path.format_map(PATH_VALUES)
    error = assert_es_error(
        response, 401, SECURITY, f"missing authentication credentials for REST request [{uri}]"
    )
    assert response.headers.get_list("www-authenticate") == [BASIC_CHALLENGE, "ApiKey"]
    assert error["header"] == {"WWW-Authenticate": [BASIC_CHALLENGE, "ApiKey"]}


def test_unknown_paths_and_methods_want_credentials_first(secure_node: NodeProcess) -> None:
    assert_es_error(anonymous(secure_node, "GET", "/_nope?pretty"), 401, SECURITY,
                    "missing authentication credentials for REST request [/_nope?pretty]")
    assert_es_error(anonymous(secure_node, "DELETE", "/_tasks"), 401, SECURITY)
    assert_es_error(secure_node.get("/_nope"), 400, "illegal_argument_exception")


def test_a_page_script_gets_no_basic_challenge(secure_node: NodeProcess) -> None:
    """So that a browser does not put its own login box over the web UI's sign-in."""
    response = anonymous(secure_node, "GET", "/_tasks",
                         headers={"X-Requested-With": "XMLHttpRequest"})
    assert response.status_code == 401
    assert response.headers.get_list("www-authenticate") == ["ApiKey"]


def test_the_web_ui_files_need_no_credentials(secure_node: NodeProcess) -> None:
    response = anonymous(secure_node, "GET", "/_ui/")
    assert response.status_code == 200 and "<html" in response.text.lower()


def test_a_wrong_password_or_user_is_refused(secure_node: NodeProcess) -> None:
    for user, password in (("admin", "wrong-password"), ("nobody", ADMIN_PASSWORD)):
        response = anonymous(secure_node, "GET", "/_tasks", headers=basic(user, password))
        assert_es_error(response, 401, SECURITY,
                        f"unable to authenticate user [{user}] for REST request [/_tasks]")
        assert "www-authenticate" in response.headers


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        ("ApiKey !!!", "the ApiKey credentials are not base64-encoded UTF-8 text"),
        ("ApiKey " + base64.b64encode(b"no-colon").decode(),
         "the ApiKey credentials are not [id:secret] encoded"),
        ("ApiKey " + base64.b64encode(b"unknown:secret").decode(),
         "API key: api key [unknown] does not exist"),
        ("Basic " + base64.b64encode(b"\xff\xfe").decode(),
         "the Basic credentials are not base64-encoded UTF-8 text"),
    ],
)
def test_malformed_or_unknown_api_keys_are_refused(
    secure_node: NodeProcess, authorization: str, detail: str
) -> None:
    response = anonymous(secure_node, "GET", "/_tasks", headers={"Authorization": authorization})
    error = assert_es_error(
        response, 401, SECURITY,
        "unable to authenticate with provided credentials and anonymous access is not allowed "
        "for this request",
    )
    assert error["additional_unsuccessful_credentials"] == detail


def test_a_key_with_a_wrong_secret_is_refused(
    secure_node: NodeProcess, keys: dict[str, dict[str, str]]
) -> None:
    forged = base64.b64encode(f"{keys['admin']['id']}:not-the-secret".encode()).decode()
    error = assert_es_error(anonymous(secure_node, "GET", "/", headers=api_key_header(forged)),
                           401, SECURITY)
    assert error["additional_unsuccessful_credentials"] == (
        f"API key: invalid credentials for API key [{keys['admin']['id']}]"
    )


def test_monitor_reads_but_may_not_cancel_or_run(
    secure_node: NodeProcess, keys: dict[str, dict[str, str]]
) -> None:
    task_id = secure_node.start_sleep(duration="1h")
    try:
        with as_role(secure_node, keys, "monitor") as monitor:
            for path in ("/", "/_tasks", f"/_tasks/{task_id}", "/_cat/tasks", "/_cat/nodes",
                         "/_nodes", "/_prometheus/metrics", "/_security/_authenticate"):
                assert monitor.get(path).status_code == 200, path
            hot = monitor.get("/_nodes/hot_threads", params={"interval": "10ms", "snapshots": 1})
            assert hot.status_code == 200
            denied = monitor.post(f"/_tasks/{task_id}/_cancel")
            assert_es_error(denied, 403, SECURITY, (
                f"action [cluster:admin/tasks/cancel] is unauthorized for API key id "
                f"[{keys['monitor']['id']}] of user [admin] with effective roles [monitor], this "
                "action is granted by the cluster privileges [manage,admin]"
            ))
            assert "www-authenticate" not in denied.headers
            assert_es_error(monitor.post(SLEEP_PATH, json={"duration": "0s"}), 403, SECURITY,
                            reason_pattern=r"action \[test:sleep\] is unauthorized .*")
            assert_es_error(monitor.get("/_security/api_key"), 403, SECURITY,
                            reason_pattern=r"action \[cluster:admin/xpack/security/api_key/get\] "
                                           r".* privileges \[admin\]")
        assert secure_node.get(f"/_tasks/{task_id}").json()["completed"] is False
    finally:
        secure_node.post(f"/_tasks/{task_id}/_cancel")


def test_manage_cancels_and_runs_but_may_not_manage_keys(
    secure_node: NodeProcess, keys: dict[str, dict[str, str]]
) -> None:
    with as_role(secure_node, keys, "manage") as manage:
        started = manage.post(SLEEP_PATH, params={"wait_for_completion": "false"},
                              json={"duration": "1h"})
        task_id = started.json()["task"]
        cancelled = manage.post(f"/_tasks/{task_id}/_cancel",
                                params={"wait_for_completion": "true"})
        assert cancelled.status_code == 200, cancelled.text
        assert_es_error(manage.post("/_security/api_key", json={"name": "x"}), 403, SECURITY,
                        reason_pattern=r"action \[cluster:admin/xpack/security/api_key/create\] "
                                       r"is unauthorized .* privileges \[admin\]")
        assert_es_error(manage.put("/_security/user/eve", json={"password": "secret!",
                                                                "roles": ["admin"]}),
                        403, SECURITY)


def test_the_caller_is_recorded_in_the_task_headers(
    secure_node: NodeProcess, keys: dict[str, dict[str, str]]
) -> None:
    key = keys["manage"]
    with as_role(secure_node, keys, "manage") as manage:
        task_id = manage.post(
            SLEEP_PATH, params={"wait_for_completion": "false"}, json={"duration": "1h"},
            headers={"X-Opaque-Id": "job-7", "user.name": "forged"},
        ).json()["task"]
        try:
            headers = manage.get(f"/_tasks/{task_id}").json()["task"]["headers"]
            assert headers == {"X-Opaque-Id": "job-7", "user.name": "admin",
                               "user.roles": "manage", "api_key.id": key["id"],
                               "api_key.name": "manage-key"}
        finally:
            manage.post(f"/_tasks/{task_id}/_cancel")
    task_id = secure_node.start_sleep(duration="1h")
    try:
        headers = secure_node.get(f"/_tasks/{task_id}").json()["task"]["headers"]
        assert headers == {"user.name": "admin", "user.roles": "admin"}
    finally:
        secure_node.post(f"/_tasks/{task_id}/_cancel")


def test_an_app_action_reads_who_started_it(
    secure_node: NodeProcess, keys: dict[str, dict[str, str]]
) -> None:
    with as_role(secure_node, keys, "manage") as manage:
        answer = manage.post("/_actions/user:whoami", json={})
    assert answer.status_code == 200, answer.text
    assert answer.json()["headers"] == {
        "user.name": "admin", "user.roles": "manage", "api_key.id": keys["manage"]["id"],
        "api_key.name": "manage-key",
    }


def test_authenticate_says_who_is_calling(
    secure_node: NodeProcess, keys: dict[str, dict[str, str]]
) -> None:
    by_password = secure_node.get("/_security/_authenticate").json()
    assert by_password["username"] == "admin" and by_password["roles"] == ["admin"]
    assert by_password["authentication_type"] == "realm" and "api_key" not in by_password
    with as_role(secure_node, keys, "monitor") as monitor:
        by_key = monitor.get("/_security/_authenticate").json()
    assert by_key["roles"] == ["monitor"] and by_key["authentication_type"] == "api_key"
    assert by_key["api_key"] == {"id": keys["monitor"]["id"], "name": "monitor-key"}


def test_an_invalidated_key_stops_working_at_once(secure_node: NodeProcess) -> None:
    key = create_key(secure_node, "short-lived", "monitor")
    headers = api_key_header(key["encoded"])
    assert anonymous(secure_node, "GET", "/_tasks", headers=headers).status_code == 200
    done = secure_node.client.request("DELETE", "/_security/api_key", json={"ids": [key["id"]]})
    assert done.json() == {"invalidated_api_keys": [key["id"]],
                           "previously_invalidated_api_keys": [], "error_count": 0}
    error = assert_es_error(anonymous(secure_node, "GET", "/_tasks", headers=headers), 401,
                           SECURITY)
    assert error["additional_unsuccessful_credentials"] == (
        f"API key: api key [{key['id']}] has been invalidated"
    )
    again = secure_node.client.request("DELETE", "/_security/api_key", json={"ids": [key["id"]]})
    assert again.json()["previously_invalidated_api_keys"] == [key["id"]]
    listed = secure_node.get("/_security/api_key", params={"id": key["id"]}).json()["api_keys"]
    assert [k["invalidated"] for k in listed] == [True] and "invalidation" in listed[0]


def test_an_expired_key_is_refused(secure_node: NodeProcess) -> None:
    key = create_key(secure_node, "expiring", "monitor", expiration="1ms")
    assert isinstance(key["expiration"], int)
    headers = api_key_header(key["encoded"])
    secure_node.wait_until(
        lambda: anonymous(secure_node, "GET", "/", headers=headers).status_code == 401,
        message="the key never expired",
    )
    body = anonymous(secure_node, "GET", "/", headers=headers).json()
    assert body["error"]["additional_unsuccessful_credentials"] == (
        f"API key: api key [{key['id']}] is expired"
    )


@pytest.mark.parametrize(
    ("body", "status", "error_type", "reason"),
    [
        ({}, 400, "action_request_validation_exception", r".*api key name is required.*"),
        ({"name": " padded"}, 400, "action_request_validation_exception", r".*whitespace.*"),
        ({"name": "k", "role": "root"}, 400, "illegal_argument_exception",
         r"unknown role \[root\]; the roles are \[monitor, manage, admin\]"),
        ({"name": "k", "expiration": "soon"}, 400, "illegal_argument_exception", r".*soon.*"),
        ({"name": "k", "expiration": 5}, 400, "parse_exception", r".*time value.*"),
    ],
)
def test_bad_key_requests_get_clear_errors(
    secure_node: NodeProcess, body: dict[str, Any], status: int, error_type: str, reason: str
) -> None:
    assert_es_error(secure_node.post("/_security/api_key", json=body), status, error_type,
                    reason_pattern=reason)


def test_users_sign_in_with_their_role(secure_node: NodeProcess) -> None:
    created = secure_node.client.put("/_security/user/olga",
                                     json={"password": "olga-pass", "roles": ["monitor"]})
    assert created.json() == {"created": True}
    olga = basic("olga", "olga-pass")
    assert anonymous(secure_node, "GET", "/_tasks", headers=olga).status_code == 200
    assert_es_error(anonymous(secure_node, "POST", "/_tasks/_cancel", headers=olga), 403,
                    SECURITY, reason_pattern=r".*for user \[olga\] with effective roles "
                                             r"\[monitor\].*")
    updated = secure_node.client.put("/_security/user/olga",
                                     json={"password": "new-pass", "roles": ["manage"]})
    assert updated.json() == {"created": False}
    assert anonymous(secure_node, "GET", "/", headers=olga).status_code == 401
    olga = basic("olga", "new-pass")
    assert anonymous(secure_node, "POST", "/_tasks/_cancel", params={"actions": "none"},
                     headers=olga).status_code == 200
    assert secure_node.get("/_security/user/olga").json()["olga"]["roles"] == ["manage"]
    assert "admin" in secure_node.get("/_security/user").json()


def test_deleting_a_user_revokes_its_keys(secure_node: NodeProcess) -> None:
    secure_node.client.put("/_security/user/piet", json={"password": "piet-pass",
                                                        "roles": ["admin"]})
    piet = httpx.Client(base_url=secure_node.url, timeout=30, headers=basic("piet", "piet-pass"))
    with piet:
        key = piet.post("/_security/api_key", json={"name": "piets"}).json()
    listed = secure_node.get("/_security/api_key", params={"username": "piet"}).json()
    assert [(k["id"], k["role"]) for k in listed["api_keys"]] == [(key["id"], "admin")]
    assert secure_node.client.delete("/_security/user/piet").json() == {"found": True}
    assert anonymous(secure_node, "GET", "/",
                     headers=api_key_header(key["encoded"])).status_code == 401
    gone = secure_node.client.delete("/_security/user/piet")
    assert gone.status_code == 404 and gone.json() == {"found": False}
    assert secure_node.get("/_security/user/piet").status_code == 404


@pytest.mark.parametrize(
    ("body", "error_type", "reason"),
    [
        ({"password": "short", "roles": ["monitor"]}, "illegal_argument_exception",
         r"passwords must be at least \[6\] characters long"),
        ({"password": "long-enough"}, "action_request_validation_exception", r".*roles.*"),
        ({"password": "long-enough", "roles": ["boss"]}, "illegal_argument_exception",
         r"unknown role \[boss\].*"),
        ({"roles": ["monitor"]}, "action_request_validation_exception", r".*password.*"),
    ],
)
def test_bad_user_requests_get_clear_errors(
    secure_node: NodeProcess, body: dict[str, Any], error_type: str, reason: str
) -> None:
    assert_es_error(secure_node.client.put("/_security/user/quinn", json=body), 400, error_type,
                    reason_pattern=reason)


def test_admin_may_not_delete_itself(secure_node: NodeProcess) -> None:
    assert_es_error(secure_node.client.delete("/_security/user/admin"), 400,
                    "illegal_argument_exception", "user [admin] may not delete itself")


def test_internal_endpoints_take_only_the_cluster_secret(secure_node: NodeProcess) -> None:
    response = secure_node.post(f"{INTERNAL_PREFIX}/tasks/list", json={})
    assert_es_error(response, 403, SECURITY,
                    f"missing cluster secret for internal action [{INTERNAL_PREFIX}/tasks/list]")


def test_only_hashes_are_stored(
    secure_node: NodeProcess, keys: dict[str, dict[str, str]]
) -> None:
    database = secure_node.data_dir / "taskwarden.db"
    raw = b"".join(path.read_bytes() for path in database.parent.glob("taskwarden.db*"))
    for key in keys.values():
        assert key["api_key"].encode() not in raw
    assert ADMIN_PASSWORD.encode() not in raw
    with sqlite3.connect(database) as db:
        hashes = [row[0] for row in db.execute("SELECT password_hash FROM users")]
    assert hashes and all(re.fullmatch(r"scrypt\$16384\$8\$1\$\S+\$\S+", h) for h in hashes)


def test_without_security_everyone_is_an_anonymous_admin(shared_node: NodeProcess) -> None:
    me = shared_node.get("/_security/_authenticate").json()
    assert (me["username"], me["roles"], me["authentication_type"]) == (
        "_anonymous", ["admin"], "anonymous"
    )
    assert_es_error(shared_node.post("/_security/api_key", json={"name": "k"}), 403, SECURITY,
                    reason_pattern=r"security is not enabled on this node.*")


FUZZ = settings(database=None, max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12),
              st.sampled_from(["monitor", "manage", "admin", "1d", "-1", "0s"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=3),
    max_leaves=6,
)
bodies = st.dictionaries(
    st.sampled_from(["name", "role", "roles", "expiration", "password", "ids", "id", "username",
                     "owner", "metadata"]),
    json_values, max_size=4,
)
authorizations = st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40),
    st.builds(lambda scheme, raw: f"{scheme} {base64.b64encode(raw).decode()}".strip(),
              st.sampled_from(["ApiKey", "Basic", "apikey", "BASIC", "Bearer"]),
              st.binary(max_size=40)),
)


@FUZZ
@given(authorization=authorizations)
def test_any_authorization_header_gets_a_401_not_a_crash(
    secure_node: NodeProcess, authorization: str
) -> None:
    response = anonymous(secure_node, "GET", "/_tasks", headers={"Authorization": authorization})
    assert_es_error(response, 401, SECURITY)


@FUZZ
@given(body=bodies, target=st.sampled_from(["POST /_security/api_key",
                                            "DELETE /_security/api_key",
                                            "PUT /_security/user/fuzzed"]))
def test_any_security_body_gets_an_answer_not_a_crash(
    secure_node: NodeProcess, body: dict[str, Any], target: str
) -> None:
    method, path = target.split(" ")
    if method == "DELETE":
        # Keys of the users other tests sign in as stay valid: the node is shared.
        assume(body.get("owner") is not True and body.get("username") != "admin")
    response = secure_node.client.request(method, path, json=body)
    assert response.status_code in (200, 400, 404), response.text
    if response.status_code != 200:
        assert "Traceback" not in response.text and "error" in response.json()


@pytest.mark.parametrize("secured", [True, False])
def test_pages_of_other_origins_may_not_change_anything(
    secure_node: NodeProcess, shared_node: NodeProcess, secured: bool
) -> None:
    """A form or script on another site could otherwise cancel tasks through a visitor's
    browser: a node on localhost needs no credentials, and browsers remember Basic ones."""
    node = secure_node if secured else shared_node
    foreign = {"Origin": "http://attacker.example"}
    refused = node.post("/_tasks/_cancel", params={"actions": "none"}, headers=foreign)
    assert_es_error(refused, 403, SECURITY, reason_pattern=(
        r"cross-origin request refused: \[POST /_tasks/_cancel\] from origin "
        r"\[http://attacker.example\] to \[127.0.0.1:\d+\]"
    ))
    assert_es_error(node.post(SLEEP_PATH, json={"duration": "0s"}, headers={"Origin": "null"}),
                    403, SECURITY)
    own = {"Origin": node.url}
    assert node.post("/_tasks/_cancel", params={"actions": "none"}, headers=own).status_code == 200
    assert node.get("/_tasks", headers=foreign).status_code == 200  # reads change nothing
