// The side panels: task detail, watched tasks (kept in localStorage), and hot threads.

import { call, describeErrorObject, describeFailure, taskPath } from "./api.js";
import { errorBox, h, headerChips, humanNanos, localTime, progressOf } from "./dom.js";

/** A short outcome word for a GET /_tasks/{id} answer, or null when it says nothing new. */
export function outcomeOf(result) {
  if (!result.ok) return result.status === 404 ? "not found" : null;
  const body = result.body || {};
  if (!body.completed) return body.task && body.task.cancelled ? "cancelled" : "running";
  if (body.error) return body.error.type === "task_cancelled_exception" ? "cancelled" : "failed";
  return "completed";
}

function stateClass(state) {
  return `state-${String(state).replace(/[^a-z]+/g, "-")}`;
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/** GET /_tasks/{id} for one task: running info, or the stored response or error once completed. */
export class DetailPane {
  /** deps: nodeName(id) -> name, onOpen(id), onOutcome(id, action, result). */
  constructor(root, deps) {
    this.root = root;
    this.deps = deps;
    this.body = root.querySelector("[data-role=body]");
    this.heading = root.querySelector("h2");
    this.id = null;
    this.last = null;
    this.busy = false;
    this.rawOpen = false;
    root.querySelector("[data-role=close]").addEventListener("click", () => this.close());
  }

  async open(id) {
    this.id = id;
    this.last = null;
    this.root.hidden = false;
    this.body.replaceChildren(h("p", { class: "muted", role: "status" }, `Loading task ${id}…`));
    this.heading.focus({ preventScroll: true });
    this.root.scrollIntoView({ block: "nearest" });
    await this.refresh();
  }

  close() {
    this.id = null;
    this.last = null;
    this.root.hidden = true;
  }

  /** While the task runs, the page refreshes it with the list; a finished one stays as it is. */
  get wantsRefresh() {
    return this.id !== null && (this.last === null || (this.last.ok && this.last.body.completed === false));
  }

  async refresh() {
    if (this.id === null || this.busy) return;
    const id = this.id;
    this.busy = true;
    let result;
    try {
      result = await call("GET", taskPath(id));
    } finally {
      this.busy = false;
    }
    if (this.id !== id) return;
    this.last = result;
    this.render(id, result);
    const action = result.ok && result.body.task ? result.body.task.action : undefined;
    this.deps.onOutcome(id, action, result);
  }

  render(id, result) {
    if (!result.ok) {
      this.body.replaceChildren(
        h("p", { class: "detail-id", "data-testid": "detail-id" }, id),
        errorBox(describeFailure(result), "detail-fetch-error"),
      );
      return;
    }
    const body = result.body;
    const task = body.task || {};
    const state = outcomeOf(result);
    const rows = [
      ["Node", `${this.deps.nodeName(task.node)} (${task.node})`],
      ["Type", task.type],
      ["Description", task.description],
      ["Started", localTime(task.start_time_in_millis)],
      ["Running time", humanNanos(task.running_time_in_nanos)],
      ["Cancellable", task.cancellable === undefined ? undefined : String(task.cancellable)],
      ["Cancelled", task.cancelled === undefined ? undefined : String(task.cancelled)],
    ].filter(([, value]) => value !== undefined && value !== "");
    const parent = task.parent_task_id
      ? [h("dt", {}, "Parent"), h("dd", {}, h("button", {
        type: "button", class: "link", onclick: () => this.deps.onOpen(task.parent_task_id),
      }, task.parent_task_id))]
      : [];
    const headers = Object.keys(task.headers || {}).length
      ? [h("dt", {}, "Headers"), h("dd", { class: "chips" }, headerChips(task.headers))]
      : [];
    const progress = progressOf(task.status);
    const raw = h("details", { class: "raw", ontoggle: (e) => { this.rawOpen = e.target.open; } },
      h("summary", {}, "Raw answer"), h("pre", {}, pretty(body)));
    raw.open = this.rawOpen;
    const parts = [
      h("p", { class: "detail-title" },
        h("strong", {}, task.action || "(unknown action)"), " ",
        h("span", { class: `badge ${stateClass(state)}`, "data-testid": "detail-state" }, state)),
      h("p", { class: "detail-id", "data-testid": "detail-id" }, id),
      h("dl", { class: "facts" }, rows.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]),
        parent, headers),
      task.status !== undefined
        ? h("div", { class: "detail-block" }, h("h3", {}, "Status"),
          progress ? h("progress", { value: progress.value, max: progress.max, "aria-label": `progress ${progress.label}` }) : null,
          h("pre", { "data-testid": "detail-status" }, pretty(task.status)))
        : null,
      body.response !== undefined
        ? h("div", { class: "detail-block" }, h("h3", {}, "Response"),
          h("pre", { "data-testid": "detail-response" }, pretty(body.response)))
        : null,
      body.error !== undefined
        ? h("div", { class: "detail-block" }, h("h3", {}, "Error"),
          errorBox(describeErrorObject(body.error), "detail-error"))
        : null,
      raw,
    ];
    this.body.replaceChildren(...parts.filter(Boolean));
  }
}

const WATCH_KEY = "taskwarden.ui.watched";
const WATCH_LIMIT = 50;

/** Tasks the user opened or cancelled, so their outcome stays reachable after they finish. */
export class WatchList {
  constructor(list, clearButton, onOpen) {
    this.list = list;
    this.onOpen = onOpen;
    this.items = [];
    try {
      const saved = JSON.parse(localStorage.getItem(WATCH_KEY) || "[]");
      if (Array.isArray(saved)) this.items = saved.filter((item) => item && typeof item.id === "string");
    } catch {
      this.items = [];
    }
    clearButton.addEventListener("click", () => {
      this.items = [];
      this.save();
    });
    this.render();
  }

  get(id) {
    return this.items.find((item) => item.id === id);
  }

  /** Remember a task (most recent first), or update what is known about it. */
  remember(id, action, state) {
    if (this.get(id)) {
      this.update(id, { action, state });
      return;
    }
    this.items.unshift({ id, action: action || "", state: state || "running" });
    this.items.length = Math.min(this.items.length, WATCH_LIMIT);
    this.save();
  }

  update(id, { action, state }) {
    const item = this.get(id);
    if (!item) return;
    const next = { action: action || item.action, state: state || item.state };
    if (next.action === item.action && next.state === item.state) return;
    Object.assign(item, next);
    this.save();
  }

  save() {
    try {
      localStorage.setItem(WATCH_KEY, JSON.stringify(this.items));
    } catch {
      // Storage may be full or disabled; the list still works for this page.
    }
    this.render();
  }

  render() {
    this.list.replaceChildren(...this.items.map((item) => h(
      "li",
      { "data-testid": "watched-item", "data-task-id": item.id },
      h("button", { type: "button", class: "link", "data-testid": "watched-open", onclick: () => this.onOpen(item.id) },
        item.action || "task", " ", h("span", { class: "task-id" }, item.id)),
      " ",
      h("span", { class: `badge ${stateClass(item.state)}`, "data-testid": "watched-state" }, item.state),
      h("button", {
        type: "button", class: "icon", "aria-label": `Forget ${item.id}`, title: "Forget",
        onclick: () => {
          this.items = this.items.filter((other) => other.id !== item.id);
          this.save();
        },
      }, "×"),
    )));
    this.list.closest("section").querySelector("[data-role=empty]").hidden = this.items.length > 0;
  }
}

/** GET /_nodes/{id}/hot_threads as text in a <pre>, or the server's error. */
export class HotThreads {
  constructor(root) {
    this.root = root;
    this.title = root.querySelector("[data-testid=hot-threads-title]");
    this.out = root.querySelector("[data-role=output]");
    this.seq = 0;
  }

  async show(nodeId, nodeName, type) {
    const seq = ++this.seq;
    this.root.hidden = false;
    this.title.textContent = `Hot threads of ${nodeName} (${type})`;
    this.out.replaceChildren(h("p", { class: "muted", role: "status", "data-testid": "hot-threads-loading" },
      "sampling threads…"));
    const result = await call("GET", `/_nodes/${encodeURIComponent(nodeId)}/hot_threads`, { type }, { timeoutMs: 120_000 });
    if (seq !== this.seq) return;
    if (result.ok) {
      this.out.replaceChildren(h("pre", { "data-testid": "hot-threads-output", tabindex: "0" }, result.text));
    } else {
      this.out.replaceChildren(errorBox(describeFailure(result), "hot-threads-error"));
    }
  }
}
