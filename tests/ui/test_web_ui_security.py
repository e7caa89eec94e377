"""The web UI against a node started with ``--security``: the page's own sign-in (API key or user
name and password, kept in sessionStorage), read-only pages for ``monitor``, a 403 shown as the
server's reason, sign-out, and never the browser's own login box."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import httpx
import pytest
from nodeproc import NodeProcess
from playwright.sync_api import Dialog, Locator, Page, Response, expect

Screenshot = Callable[[Page, str], None]
WHO_AM_I = "/_security/_authenticate"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One node with security on for the module; its helper client is the bootstrap admin."""
    with NodeProcess(tmp_path_factory.mktemp("ui-secure"), node_name="guarded", secure=True) as node:
        yield node


@pytest.fixture
def tab(page: Page) -> Iterator[Page]:
    """The page, failing the test if any JavaScript dialog (alert, confirm, prompt) opens."""
    dialogs: list[str] = []

    def seen(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", seen)
    yield page
    assert not dialogs, f"the browser opened dialogs: {dialogs}"


def api_key(node: NodeProcess, name: str, role: str) -> str:
    response = node.post("/_security/api_key", json={"name": name, "role": role})
    assert response.status_code == 200, response.text
    encoded: str = response.json()["encoded"]
    return encoded


def task_row(page: Page, task_id: str) -> Locator:
    return page.locator(f'[data-testid="task-row"][data-task-id="{task_id}"]')


def is_who_am_i(response: Response) -> bool:
    return response.url.endswith(WHO_AM_I)


def only_api_key_challenge(response: Response) -> None:
    """A 401 to the page's own fetch: marked as a script's, challenged without Basic."""
    assert response.status == 401
    assert response.request.header_value("x-requested-with") == "XMLHttpRequest"
    assert response.header_values("www-authenticate") == ["ApiKey"]


def sign_in_with_key(page: Page, key: str) -> None:
    page.get_by_test_id("signin-api-key").fill(key)
    page.get_by_test_id("signin-api-key-submit").click()


def test_wrong_key_then_monitor_key_shows_tasks_read_only(
    guarded: NodeProcess, tab: Page, screenshot: Screenshot
) -> None:
    task = guarded.start_sleep(headers={"X-Opaque-Id": "watched-by-monitor"}, duration="10m")
    monitor = api_key(guarded, "ui-monitor", "monitor")

    with tab.expect_response(is_who_am_i) as first:
        tab.goto(guarded.url + "/_ui/")
    only_api_key_challenge(first.value)
    assert first.value.request.header_value("authorization") is None
    panel = tab.get_by_test_id("signin-panel")
    expect(panel).to_be_visible()
    expect(tab.get_by_test_id("task-table")).to_be_hidden()
    expect(tab.get_by_test_id("signed-in")).to_be_hidden()
    # Asked without credentials the panel just asks: no error yet.
    expect(tab.get_by_test_id("signin-error")).to_be_empty()

    wrong = base64.b64encode(b"no-such-key:wrong-secret").decode()
    with tab.expect_response(is_who_am_i) as attempt:
        sign_in_with_key(tab, wrong)
    only_api_key_challenge(attempt.value)
    assert attempt.value.request.header_value("authorization") == f"ApiKey {wrong}"
    error = tab.get_by_test_id("signin-error")
    expect(error).to_contain_text(
        "security_exception: unable to authenticate with provided credentials"
    )
    expect(error).to_contain_text("api key [no-such-key] does not exist")
    expect(error).to_contain_text("HTTP 401")
    expect(panel).to_be_visible()
    screenshot(tab, "signin-wrong-key")

    sign_in_with_key(tab, monitor)
    expect(panel).to_be_hidden()
    expect(tab.get_by_test_id("signed-in-name")).to_have_text("API key [ui-monitor] of admin")
    expect(tab.get_by_test_id("signed-in-role")).to_have_text("monitor")
    expect(tab.get_by_test_id("read-only-note")).to_be_visible()
    row = task_row(tab, task)
    expect(row.get_by_test_id("task-state")).to_have_text("running")
    expect(row.get_by_test_id("task-headers")).to_contain_text("watched-by-monitor")
    expect(tab.get_by_test_id("cluster-info")).to_contain_text("cluster [")
    # Read-only: no per-row cancel, no selection, no bulk cancel.
    expect(row.get_by_test_id("task-cancel")).to_have_count(0)
    expect(row.get_by_test_id("task-select")).to_have_count(0)
    expect(tab.get_by_test_id("cancel-selected")).to_be_hidden()
    expect(tab.get_by_test_id("select-all")).to_be_hidden()
    # Reading still works: the detail pane and the nodes.
    row.get_by_test_id("task-open").click()
    expect(tab.get_by_test_id("detail-state")).to_have_text("running")
    expect(tab.get_by_test_id("node-row")).to_have_count(1)
    assert tab.evaluate("sessionStorage.getItem('taskwarden.ui.authorization')") == f"ApiKey {monitor}"
    screenshot(tab, "signed-in-monitor")


def test_manage_key_cancels_a_running_task(guarded: NodeProcess, tab: Page) -> None:
    task = guarded.start_sleep(headers={"X-Opaque-Id": "to-cancel"}, duration="10m")
    manage = api_key(guarded, "ui-manage", "manage")

    tab.goto(guarded.url + "/_ui/")
    with tab.expect_request(lambda r: r.url.endswith(WHO_AM_I)) as signing:
        sign_in_with_key(tab, manage)
    assert signing.value.header_value("authorization") == f"ApiKey {manage}"
    expect(tab.get_by_test_id("signed-in-role")).to_have_text("manage")
    expect(tab.get_by_test_id("read-only-note")).to_be_hidden()
    row = task_row(tab, task)
    row.get_by_test_id("task-cancel").click()
    dialog = tab.get_by_test_id("confirm-dialog")
    expect(dialog).to_contain_text(task)
    with tab.expect_request(lambda r: "/_cancel" in r.url) as cancel:
        dialog.get_by_test_id("confirm-yes").click()
    assert cancel.value.header_value("authorization") == f"ApiKey {manage}"
    assert cancel.value.header_value("x-requested-with") == "XMLHttpRequest"
    entry = tab.locator(f'[data-testid="cancel-entry"][data-task-id="{task}"]')
    expect(entry.get_by_test_id("cancel-result")).to_contain_text("the tree stopped after")
    expect(row).to_have_count(0)
    assert task not in [f"{t['node']}:{t['id']}" for t in guarded.running()]

    # The key is invalidated while the page is open: the next refresh answers 401 and the
    # page asks for credentials again, saying why.
    key_id = base64.b64decode(manage).decode().partition(":")[0]
    gone = guarded.client.request("DELETE", "/_security/api_key", json={"ids": [key_id]})
    assert gone.status_code == 200, gone.text
    expect(tab.get_by_test_id("signin-panel")).to_be_visible()
    expect(tab.get_by_test_id("signin-error")).to_contain_text(f"api key [{key_id}] has been invalidated")
    expect(tab.get_by_test_id("signed-in")).to_be_hidden()
    assert tab.evaluate("sessionStorage.length") == 0


def test_password_sign_in_a_403_and_sign_out(
    guarded: NodeProcess, tab: Page, screenshot: Screenshot
) -> None:
    """A user whose role is lowered while the page is open: the refused cancel shows the server's
    403, the page turns read-only; signing out forgets the credentials."""
    created = guarded.post(
        "/_security/user/ops", json={"password": "ops-password", "roles": ["manage"]}
    )
    assert created.status_code == 200, created.text
    task = guarded.start_sleep(headers={"X-Opaque-Id": "kept"}, duration="10m")

    tab.goto(guarded.url + "/_ui/")
    tab.get_by_test_id("signin-username").fill("ops")
    tab.get_by_test_id("signin-password").fill("not-the-password")
    tab.get_by_test_id("signin-password-submit").click()
    expect(tab.get_by_test_id("signin-error")).to_contain_text("unable to authenticate user [ops]")
    tab.get_by_test_id("signin-password").fill("ops-password")
    tab.get_by_test_id("signin-password-submit").click()
    expect(tab.get_by_test_id("signin-panel")).to_be_hidden()
    expect(tab.get_by_test_id("signed-in-name")).to_have_text("ops")
    expect(tab.get_by_test_id("signed-in-role")).to_have_text("manage")
    expect(tab.get_by_test_id("signin-password")).to_have_value("")
    row = task_row(tab, task)
    expect(row.get_by_test_id("task-cancel")).to_be_enabled()

    lowered = guarded.post(
        "/_security/user/ops", json={"password": "ops-password", "roles": ["monitor"]}
    )
    assert lowered.status_code == 200, lowered.text
    row.get_by_test_id("task-cancel").click()
    tab.get_by_test_id("confirm-yes").click()
    refused = tab.locator(f'[data-testid="cancel-entry"][data-task-id="{task}"]')
    expect(refused.get_by_test_id("cancel-error")).to_contain_text(
        "security_exception: action [cluster:admin/tasks/cancel] is unauthorized for user [ops]"
    )
    expect(refused.get_by_test_id("cancel-error")).to_contain_text("HTTP 403")
    # The 403 made the page ask again who it is: now read-only, the task still listed.
    expect(tab.get_by_test_id("signed-in-role")).to_have_text("monitor")
    expect(row.get_by_test_id("task-cancel")).to_have_count(0)
    expect(row.get_by_test_id("task-state")).to_have_text("running")
    screenshot(tab, "refused-cancel")

    tab.get_by_test_id("sign-out").click()
    expect(tab.get_by_test_id("signin-panel")).to_be_visible()
    expect(tab.get_by_test_id("signed-in")).to_be_hidden()
    expect(tab.get_by_test_id("task-table")).to_be_hidden()
    expect(tab.get_by_test_id("cancel-entry")).to_have_count(0)  # not shown to the next person
    assert tab.evaluate("sessionStorage.length") == 0
    with tab.expect_response(is_who_am_i) as again:
        tab.reload()
    only_api_key_challenge(again.value)
    expect(tab.get_by_test_id("signin-panel")).to_be_visible()


def test_a_script_gets_no_basic_challenge_but_a_plain_client_does(guarded: NodeProcess) -> None:
    """What keeps the browser's own login box away is the page's header: without it the same
    401 offers Basic. The UI's own files need no credentials."""
    plain = httpx.get(guarded.url + WHO_AM_I)
    assert plain.status_code == 401
    assert any(v.startswith("Basic ") for v in plain.headers.get_list("www-authenticate"))
    scripted = httpx.get(guarded.url + WHO_AM_I, headers={"X-Requested-With": "XMLHttpRequest"})
    assert scripted.headers.get_list("www-authenticate") == ["ApiKey"]
    for path in ("/_ui/", "/_ui/app.js", "/_ui/auth.js"):
        assert httpx.get(guarded.url + path).status_code == 200, path
