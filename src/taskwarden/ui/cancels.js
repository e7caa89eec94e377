// Cancelling: the confirmation dialog and the log of cancel requests with their outcome.

import { call, describeFailure, describePartialFailures, taskPath, tasksOf } from "./api.js";
import { errorBox, h } from "./dom.js";

const LOG_LIMIT = 20;
const CANCEL_TIMEOUT_MS = 15 * 60_000;

/** Ask before cancelling; resolves true only when the user confirms. targets: [{id, action, descendants}]. */
export function confirmCancel(dialog, targets) {
  const many = targets.length > 1;
  dialog.querySelector("[data-role=title]").textContent = many ? `Cancel ${targets.length} tasks?` : "Cancel this task?";
  dialog.querySelector("[data-role=list]").replaceChildren(...targets.map((t) => h(
    "li",
    {},
    h("strong", {}, t.action || "task"), " ", h("span", { class: "task-id" }, t.id),
    t.descendants ? ` and its ${t.descendants} descendant ${t.descendants === 1 ? "task" : "tasks"}` : "",
  )));
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.showModal();
  });
}

/** The cancel requests of this page, newest first. */
export class CancelLog {
  /** onOpen(id): show a task's detail. */
  constructor(list, onOpen) {
    this.list = list;
    this.onOpen = onOpen;
  }

  /** POST /_tasks/{id}/_cancel?wait_for_completion=true; shows the wait, then the answer. */
  async cancel(id, action) {
    const status = h("p", { class: "waiting", role: "status", "data-testid": "cancel-waiting" },
      h("span", { class: "spinner", "aria-hidden": "true" }), "waiting for the tree to stop…");
    const entry = h(
      "li",
      { "data-testid": "cancel-entry", "data-task-id": id },
      h("p", { class: "cancel-head" }, "Cancel ", h("strong", {}, action || "task"), " ",
        h("span", { class: "task-id" }, id), h("span", { class: "muted" }, ` at ${new Date().toLocaleTimeString()}`)),
      status,
    );
    this.list.prepend(entry);
    while (this.list.children.length > LOG_LIMIT) this.list.lastElementChild.remove();
    this.list.closest("section").querySelector("[data-role=empty]").hidden = true;
    const started = performance.now();
    const result = await call("POST", taskPath(id, "/_cancel"), { wait_for_completion: "true" },
      { timeoutMs: CANCEL_TIMEOUT_MS });
    const millis = Math.round(performance.now() - started);
    status.replaceWith(this.outcome(result, millis));
    return result;
  }

  /** Empty the log (on sign-out: the next person must not see what this one cancelled). */
  clear() {
    this.list.replaceChildren();
    this.list.closest("section").querySelector("[data-role=empty]").hidden = false;
  }

  outcome(result, millis) {
    if (!result.ok) return errorBox(describeFailure(result), "cancel-error");
    const tasks = tasksOf(result.body);
    const failures = describePartialFailures(result.body);
    const summary = tasks.length
      ? `Cancelled; the tree stopped after ${formatMillis(millis)}.`
      : "Nothing was cancelled.";
    return h(
      "div",
      { class: "cancel-outcome", "data-testid": "cancel-result" },
      h("p", {}, summary),
      tasks.length
        ? h("ul", { class: "plain" }, tasks.map(([taskId, info]) => h("li", {},
          h("button", { type: "button", class: "link", "data-testid": "cancel-result-open", onclick: () => this.onOpen(taskId) },
            info.action || "task", " ", h("span", { class: "task-id" }, taskId)))))
        : null,
      failures.length
        ? h("div", { "data-testid": "cancel-failures" }, failures.map((parts) => errorBox(parts, "cancel-failure")))
        : null,
    );
  }
}

function formatMillis(millis) {
  return millis < 1000 ? `${millis} ms` : `${(millis / 1000).toFixed(1)} s`;
}
