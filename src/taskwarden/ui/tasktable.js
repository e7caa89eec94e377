// The task tree as table rows, updated in place (keyed by task id) so focus, checkboxes and
// clicks survive the refresh every second.

import { h, headerChips, humanNanos, localTime, setText, statusView } from "./dom.js";

export class TaskTable {
  /** handlers: open(id), cancel(id), toggle(id), select(id, checked). */
  constructor(tbody, handlers) {
    this.tbody = tbody;
    this.rows = new Map();
    this.canCancel = true;
    tbody.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button || button.disabled) return;
      const row = button.closest("tr");
      if (button.dataset.action === "cancel" && !this.canCancel) return;
      handlers[button.dataset.action](row.dataset.taskId);
    });
    tbody.addEventListener("change", (event) => {
      if (!event.target.matches("input[type=checkbox]")) return;
      handlers.select(event.target.closest("tr").dataset.taskId, event.target.checked);
    });
  }

  /** With `allowed` false (a read-only role) rows have no checkbox and no cancel button. */
  setCanCancel(allowed) {
    if (allowed === this.canCancel) return;
    this.canCancel = allowed;
    // The rows are built again, with or without their controls, by the next render.
    this.tbody.replaceChildren();
    this.rows.clear();
  }

  /** Show exactly these items, in this order. Each: {id, task, depth, childCount, expanded,
   * context, nodeName, pending, selected, open}. */
  render(items) {
    const seen = new Set();
    let cursor = this.tbody.firstElementChild;
    for (const item of items) {
      seen.add(item.id);
      let entry = this.rows.get(item.id);
      if (!entry) {
        entry = createRow(item.id, this.canCancel);
        this.rows.set(item.id, entry);
      }
      updateRow(entry, item);
      if (entry.row === cursor) {
        cursor = cursor.nextElementSibling;
      } else {
        this.tbody.insertBefore(entry.row, cursor);
      }
    }
    for (const [id, entry] of this.rows) {
      if (!seen.has(id)) {
        entry.row.remove();
        this.rows.delete(id);
      }
    }
  }
}

function createRow(id, canCancel) {
  const select = canCancel
    ? h("input", { type: "checkbox", "data-testid": "task-select", "aria-label": `Select task ${id}` })
    : null;
  const toggle = h("button", { type: "button", class: "toggle", "data-action": "toggle", "data-testid": "task-toggle" });
  const open = h("button", {
    type: "button", class: "link", "data-action": "open", "data-testid": "task-open", title: "Show details",
  });
  const kids = h("span", { class: "kids" });
  const desc = h("span", { class: "desc" });
  const cancel = canCancel
    ? h("button", { type: "button", class: "danger small", "data-action": "cancel", "data-testid": "task-cancel" }, "Cancel")
    : null;
  const cells = {
    node: h("td", { "data-testid": "task-node" }),
    running: h("td", { class: "num", "data-testid": "task-running" }),
    status: h("td", { class: "c-status", "data-testid": "task-status" }),
    headers: h("td", { class: "c-headers", "data-testid": "task-headers" }),
    state: h("td", {}, h("span", { class: "badge", "data-testid": "task-state" })),
  };
  const row = h(
    "tr",
    { "data-testid": "task-row", "data-task-id": id },
    canCancel ? h("td", { class: "c-select" }, select) : null,
    h(
      "td",
      { class: "c-action" },
      h(
        "div",
        { class: "tree" },
        toggle,
        h("div", { class: "names" },
          h("div", {}, open, kids),
          h("span", { class: "task-id", "data-testid": "task-id" }, id),
          desc),
      ),
    ),
    cells.node, cells.running, cells.status, cells.headers, cells.state,
    canCancel ? h("td", { class: "c-cancel" }, cancel) : null,
  );
  return { row, select, toggle, open, kids, desc, cancel, cells, statusKey: undefined, headersKey: undefined };
}

function updateRow(entry, item) {
  const { row, select, toggle, open, kids, desc, cancel, cells } = entry;
  const task = item.task;
  const cancellable = task.cancellable !== false;
  row.classList.toggle("context", item.context);
  row.classList.toggle("open", item.open);
  row.classList.toggle("cancelled", Boolean(task.cancelled) || item.pending);
  row.dataset.parentId = task.parent_task_id || "";
  row.dataset.depth = String(item.depth);
  row.style.setProperty("--depth", String(item.depth));

  if (select) {
    select.checked = item.selected;
    select.disabled = !cancellable || Boolean(task.cancelled) || item.pending;
  }

  toggle.classList.toggle("invisible", item.childCount === 0);
  toggle.disabled = item.childCount === 0;
  toggle.setAttribute("aria-expanded", String(item.expanded));
  toggle.setAttribute("aria-label", `${item.expanded ? "Collapse" : "Expand"} children of ${item.id}`);
  setText(toggle, item.expanded ? "▾" : "▸");
  setText(open, task.action || "(no action)");
  open.setAttribute("aria-label", `${task.action || "task"} ${item.id}: show details`);
  setText(kids, item.childCount ? ` ${item.childCount} ${item.childCount === 1 ? "child" : "children"}` : "");
  setText(desc, task.description || "");

  setText(cells.node, item.nodeName);
  cells.node.title = task.node || "";
  setText(cells.running, humanNanos(task.running_time_in_nanos));
  cells.running.title = `started ${localTime(task.start_time_in_millis)}`;

  const statusKey = JSON.stringify(task.status ?? null);
  if (statusKey !== entry.statusKey) {
    entry.statusKey = statusKey;
    cells.status.replaceChildren(...statusView(task.status));
    cells.status.title = task.status === undefined ? "" : JSON.stringify(task.status, null, 2);
  }
  const headersKey = JSON.stringify(task.headers ?? {});
  if (headersKey !== entry.headersKey) {
    entry.headersKey = headersKey;
    cells.headers.replaceChildren(...headerChips(task.headers));
  }

  const [stateText, stateClass] = stateOf(task, item.pending);
  const badge = cells.state.firstElementChild;
  setText(badge, stateText);
  badge.className = `badge ${stateClass}`;

  if (cancel) {
    cancel.disabled = !cancellable || Boolean(task.cancelled) || item.pending;
    cancel.setAttribute("aria-label", `Cancel ${task.action} ${item.id}`);
    cancel.title = cancellable ? "Cancel this task and all its descendants" : "This task cannot be cancelled";
  }
}

function stateOf(task, pending) {
  if (pending) return ["stopping…", "state-stopping"];
  if (task.cancelled) return ["cancelled", "state-cancelled"];
  if (task.cancellable === false) return ["running (not cancellable)", "state-running"];
  return ["running", "state-running"];
}
