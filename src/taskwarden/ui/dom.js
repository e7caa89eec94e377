// Small DOM helpers and the compact renderings shared by the table and the panels.

/** An element with attributes (`class`, `text`, `on<event>`, anything else as an attribute). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Set text only when it changed, so refreshes do not disturb selection or screen readers. */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** A readable error: bold "type: reason", its causes, and the HTTP status when known. */
export function errorBox(parts, testid) {
  return h(
    "div",
    { class: "error", role: "alert", "data-testid": testid },
    h("strong", { class: "error-title" }, parts.title),
    parts.status ? h("span", { class: "error-status" }, ` (HTTP ${parts.status})`) : null,
    parts.lines && parts.lines.length
      ? h("ul", { class: "error-causes" }, parts.lines.map((line) => h("li", {}, line)))
      : null,
  );
}

function oneDecimal(value) {
  return String(Math.round(value * 10) / 10);
}

/** Nanoseconds the way Elasticsearch's `human` output writes them: 520ms, 3.8s, 2.5m, 1.1h, 3d. */
export function humanNanos(nanos) {
  if (typeof nanos !== "number" || !Number.isFinite(nanos)) return "";
  if (nanos < 1e3) return `${nanos}nanos`;
  if (nanos < 1e6) return `${oneDecimal(nanos / 1e3)}micros`;
  if (nanos < 1e9) return `${oneDecimal(nanos / 1e6)}ms`;
  const seconds = nanos / 1e9;
  if (seconds < 60) return `${oneDecimal(seconds)}s`;
  if (seconds < 3600) return `${oneDecimal(seconds / 60)}m`;
  if (seconds < 86400) return `${oneDecimal(seconds / 3600)}h`;
  return `${oneDecimal(seconds / 86400)}d`;
}

export function localTime(millis) {
  return typeof millis === "number" ? new Date(millis).toLocaleString() : "";
}

function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

// Elasticsearch's reindex and by-query tasks count what they did of `total` in these fields.
const REINDEX_COUNTERS = ["created", "updated", "deleted", "noops", "version_conflicts"];

/** {value, max, label, keys} when a status reports progress: numeric done/total, progress 0..1,
 * or Elasticsearch's reindex counters against total. */
export function progressOf(status) {
  if (!status || typeof status !== "object" || Array.isArray(status)) return null;
  if (isNumber(status.done) && isNumber(status.total) && status.total > 0) {
    const value = Math.max(0, Math.min(status.done, status.total));
    return { value, max: status.total, label: `${status.done}/${status.total}`, keys: ["done", "total"] };
  }
  if (isNumber(status.progress) && status.progress >= 0 && status.progress <= 1) {
    return { value: status.progress, max: 1, label: `${Math.round(status.progress * 100)}%`, keys: ["progress"] };
  }
  const counters = REINDEX_COUNTERS.filter((key) => isNumber(status[key]));
  if (isNumber(status.total) && status.total > 0 && counters.length) {
    const done = counters.reduce((sum, key) => sum + status[key], 0);
    const value = Math.min(done, status.total);
    return { value, max: status.total, label: `${done}/${status.total}`, keys: [] };
  }
  return null;
}

function compactValue(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

/** One line for a status: "key: value · key: value", without the keys a progress bar shows. */
export function compactStatus(status, skip = []) {
  if (status === null || status === undefined) return "";
  if (typeof status !== "object" || Array.isArray(status)) return compactValue(status);
  return Object.entries(status)
    .filter(([key]) => !skip.includes(key))
    .map(([key, value]) => `${key}: ${compactValue(value)}`)
    .join(" · ");
}

/** The status cell: a progress bar when there is progress, then the rest in one line. */
export function statusView(status) {
  const progress = progressOf(status);
  const text = compactStatus(status, progress ? progress.keys : []);
  const parts = [];
  if (progress) {
    parts.push(
      h(
        "span",
        { class: "progress", "data-testid": "task-progress" },
        h("progress", { value: progress.value, max: progress.max, "aria-label": `progress ${progress.label}` }),
        h("span", { class: "progress-label" }, progress.label),
      ),
    );
  }
  if (text) parts.push(h("span", { class: "status-text" }, text));
  return parts;
}

/** Task headers as small labelled chips (X-Opaque-Id first). */
export function headerChips(headers) {
  const entries = Object.entries(headers || {});
  entries.sort(([a], [b]) => (a === "X-Opaque-Id" ? -1 : b === "X-Opaque-Id" ? 1 : a.localeCompare(b)));
  return entries.map(([name, value]) =>
    h(
      "span",
      { class: "chip", title: `${name}: ${value}`, "data-header": name },
      h("span", { class: "chip-name" }, name),
      " ",
      h("span", { class: "chip-value" }, compactValue(value)),
    ),
  );
}
