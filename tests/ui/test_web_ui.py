"""The web UI at ``/_ui/`` in a real headless Chromium (Debian's), driven by Playwright, against
a real node: the live tree, filters, cancel with wait, the detail pane and hot threads."""

from __future__ import annotations

import re
from collections.abc import Callable

from nodeproc import NodeProcess
from playwright.sync_api import Locator, Page, expect

# Children keep running this long after the cancel, so the wait is visible in the page.
STOP_DELAY = "2s"

Screenshot = Callable[[Page, str], None]


def task_row(page: Page, task_id: str) -> Locator:
    return page.locator(f'[data-testid="task-row"][data-task-id="{task_id}"]')


def child_rows(page: Page, parent_id: str) -> Locator:
    return page.locator(f'[data-testid="task-row"][data-parent-id="{parent_id}"]')


def children_of(node: NodeProcess, parent_id: str) -> list[str]:
    return [f"{t['node']}:{t['id']}" for t in node.running() if t.get("parent_task_id") == parent_id]


def test_tree_filter_cancel_with_wait_and_stored_outcome(
    node: NodeProcess, page: Page, screenshot: Screenshot
) -> None:
    parent = node.start_sleep(
        headers={"X-Opaque-Id": "ui-nightly-import"}, duration="10m", children_per_node=2,
        stop_delay=STOP_DELAY,
    )
    other = node.start_sleep(headers={"X-Opaque-Id": "someone-else"}, duration="10m")
    node.wait_until(lambda: len(children_of(node, parent)) == 2, message="children started")
    children = children_of(node, parent)

    page.goto(node.url + "/_ui/")
    parent_row = task_row(page, parent)
    expect(parent_row.get_by_test_id("task-open")).to_have_text("test:sleep")
    expect(parent_row.get_by_test_id("task-node")).to_have_text("solo")
    expect(parent_row.get_by_test_id("task-headers")).to_contain_text("ui-nightly-import")
    expect(parent_row.get_by_test_id("task-state")).to_have_text("running")
    expect(parent_row.get_by_test_id("task-running")).to_have_text(re.compile(r"^[\d.]+(ms|s|m)$"))
    expect(child_rows(page, parent)).to_have_count(2)
    for child in children:
        row = task_row(page, child)
        expect(row).to_have_attribute("data-depth", "1")
        expect(row.get_by_test_id("task-open")).to_have_text("test:sleep[c]")
        expect(row.get_by_test_id("task-headers")).to_contain_text("ui-nightly-import")
    expect(task_row(page, other)).to_be_visible()
    # The page's own list requests are hidden unless asked for.
    expect(page.locator('[data-testid="task-row"]')).to_have_count(4)
    screenshot(page, "tree")

    page.get_by_label("Opaque id").fill("nightly")
    expect(task_row(page, other)).to_have_count(0)
    expect(parent_row).to_be_visible()
    expect(child_rows(page, parent)).to_have_count(2)

    # A child opened before the cancel: afterwards it has no stored result, a readable 404.
    task_row(page, children[0]).get_by_test_id("task-open").click()
    pane = page.get_by_test_id("detail-pane")
    expect(pane.get_by_test_id("detail-state")).to_have_text("running")
    expect(pane.get_by_test_id("detail-id")).to_have_text(children[0])

    parent_row.get_by_test_id("task-cancel").click()
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(parent)
    expect(dialog).to_contain_text("2 descendant tasks")
    dialog.get_by_test_id("confirm-yes").click()
    expect(dialog).to_be_hidden()

    entry = page.locator(f'[data-testid="cancel-entry"][data-task-id="{parent}"]')
    waiting = entry.get_by_test_id("cancel-waiting")
    expect(waiting).to_have_text("waiting for the tree to stop…")
    expect(parent_row.get_by_test_id("task-state")).to_have_text("stopping…")
    screenshot(page, "cancel-waiting")

    expect(entry.get_by_test_id("cancel-result")).to_contain_text("the tree stopped after")
    expect(waiting).to_have_count(0)
    expect(entry.get_by_test_id("cancel-failures")).to_have_count(0)
    expect(task_row(page, parent)).to_have_count(0)
    expect(child_rows(page, parent)).to_have_count(0)
    assert not [t for t in node.running() if parent in (f"{t['node']}:{t['id']}", t.get("parent_task_id"))]
    page.get_by_label("Opaque id").fill("")
    expect(task_row(page, other).get_by_test_id("task-state")).to_have_text("running")

    entry.get_by_test_id("cancel-result-open").filter(has_text=parent).click()
    expect(pane.get_by_test_id("detail-id")).to_have_text(parent)
    expect(pane.get_by_test_id("detail-state")).to_have_text("cancelled")
    expect(pane.get_by_test_id("detail-error")).to_contain_text(
        "task_cancelled_exception: task cancelled [by user request]"
    )
    watched = page.get_by_test_id("watched-list")
    expect(watched.locator(f'[data-task-id="{parent}"] [data-testid="watched-state"]')).to_have_text(
        "cancelled"
    )
    screenshot(page, "cancelled-detail")

    # The child's outcome was never stored: the server's 404 body, shown readably.
    watched.locator(f'[data-task-id="{children[0]}"] [data-testid="watched-open"]').click()
    expect(pane.get_by_test_id("detail-fetch-error")).to_contain_text(
        f"resource_not_found_exception: task [{children[0]}] isn't running and hasn't stored its results"
    )
    expect(pane.get_by_test_id("detail-fetch-error")).to_contain_text("HTTP 404")


def test_cancel_selected_hot_threads_and_pause(
    node: NodeProcess, page: Page, screenshot: Screenshot
) -> None:
    first = node.start_sleep(headers={"X-Opaque-Id": "batch-a"}, duration="10m")
    second = node.start_sleep(headers={"X-Opaque-Id": "batch-b"}, duration="10m")
    keep = node.start_sleep(headers={"X-Opaque-Id": "keep"}, duration="10m")

    page.goto(node.url + "/_ui/")
    for task_id in (first, second):
        task_row(page, task_id).get_by_test_id("task-select").check()
    bulk = page.get_by_test_id("cancel-selected")
    expect(bulk).to_have_text("Cancel selected (2)")
    bulk.click()
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_contain_text("Cancel 2 tasks?")
    dialog.get_by_test_id("confirm-no").click()
    expect(dialog).to_be_hidden()
    expect(task_row(page, first).get_by_test_id("task-state")).to_have_text("running")

    bulk.click()
    dialog.get_by_test_id("confirm-yes").click()
    for task_id in (first, second):
        entry = page.locator(f'[data-testid="cancel-entry"][data-task-id="{task_id}"]')
        expect(entry.get_by_test_id("cancel-result")).to_contain_text(task_id)
        expect(task_row(page, task_id)).to_have_count(0)
    expect(bulk).to_have_text("Cancel selected (0)")
    expect(bulk).to_be_disabled()
    expect(task_row(page, keep)).to_be_visible()

    node_row = page.locator(f'[data-testid="node-row"][data-node-id="{node.node_id}"]')
    node_row.get_by_test_id("hot-threads-button").click()
    answer = page.locator('[data-testid="hot-threads-output"], [data-testid="hot-threads-error"]')
    expect(answer).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("hot-threads-title")).to_contain_text("Hot threads of solo")
    if page.get_by_test_id("hot-threads-output").count():
        expect(page.get_by_test_id("hot-threads-output")).to_contain_text(node.node_id)
    screenshot(page, "hot-threads")

    pause = page.get_by_test_id("pause-button")
    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("last-update")).to_contain_text("paused")
    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_test_id("last-update")).to_contain_text("updated")


def test_static_files_redirect_and_unknown_file(shared_node: NodeProcess, page: Page) -> None:
    plain = shared_node.get("/_ui", follow_redirects=False)
    assert plain.status_code == 307
    assert plain.headers["location"] == "/_ui/"
    kinds = {"/_ui/": "text/html", "/_ui/app.js": "javascript", "/_ui/app.css": "text/css"}
    for path, kind in kinds.items():
        response = shared_node.get(path)
        assert response.status_code == 200, path
        assert kind in response.headers["content-type"], (path, response.headers)
    for path in ("/_ui/nope.js", "/_ui/%2e%2e/node.py"):
        missing = shared_node.get(path)
        assert missing.status_code == 404, path
        assert missing.json()["error"]["type"] == "resource_not_found_exception"
    assert shared_node.post("/_ui/").status_code == 405

    page.goto(shared_node.url + "/_ui")
    assert page.url == shared_node.url + "/_ui/"
    expect(page.get_by_test_id("cluster-info")).to_contain_text("cluster [")
    # Security is off: no sign-in, nobody shown as signed in, and the page may cancel.
    expect(page.get_by_test_id("refresh-button")).to_be_visible()
    expect(page.get_by_test_id("signin-panel")).to_be_hidden()
    expect(page.get_by_test_id("signed-in")).to_be_hidden()
    expect(page.get_by_test_id("cancel-selected")).to_be_visible()


def test_status_rendering_and_client_filters(shared_node: NodeProcess, page: Page) -> None:
    """The page's own helpers, run in the browser: progress, human times, the opaque-id filter."""
    page.goto(shared_node.url + "/_ui/")
    result = page.evaluate(
        """async () => {
            const dom = await import("/_ui/dom.js");
            const tree = await import("/_ui/tree.js");
            const bar = dom.statusView({phase: "copying", done: 3, total: 4})[0].querySelector("progress");
            const task = (id, opaque, children = []) => ({
                node: "n", id, start_time_in_millis: id,
                headers: opaque ? {"X-Opaque-Id": opaque} : {}, children,
            });
            const forest = tree.toTree({
                "n:1": task(1, "", [task(2, "nightly-a"), task(3, "other")]),
                "n:4": task(4, "taskwarden-ui"),
            });
            const kept = tree.filterTree(forest, {showOwn: false, opaque: "NIGHTLY"});
            return {
                done: dom.progressOf({done: 3, total: 4}),
                fraction: dom.progressOf({progress: 0.25}),
                none: dom.progressOf({phase: "x", done: 1}),
                reindex: dom.progressOf({total: 10, created: 2, updated: 3, noops: 1, batches: 1}),
                rest: dom.compactStatus({phase: "copying", done: 3, total: 4}, ["done", "total"]),
                bar: [bar.value, bar.max],
                times: [520e6, 3.8e9, 150e9, 2 * 3600e9].map(dom.humanNanos),
                all: tree.filterTree(forest, {showOwn: true, opaque: ""}).map((n) => n.id),
                kept: kept.map((n) => [n.id, n.context, n.children.map((c) => c.id)]),
            };
        }"""
    )
    assert result["done"] == {"value": 3, "max": 4, "label": "3/4", "keys": ["done", "total"]}
    assert result["fraction"]["label"] == "25%"
    assert result["none"] is None
    assert result["reindex"]["label"] == "6/10"
    assert result["rest"] == "phase: copying"
    assert result["bar"] == [3, 4]
    assert result["times"] == ["520ms", "3.8s", "2.5m", "2h"]
    assert result["all"] == ["n:1", "n:4"]
    assert result["kept"] == [["n:1", True, ["n:2"]]]
