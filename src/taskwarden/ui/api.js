// Calls to this node's own REST API, and readable forms of Elasticsearch-style error bodies.

// Sent as X-Opaque-Id on every request of the page, so its own list requests can be hidden.
export const UI_OPAQUE_ID = "taskwarden-ui";

const DEFAULT_TIMEOUT_MS = 20_000;

// ---- credentials ----
// The Authorization header of this tab, kept in sessionStorage: gone when the tab closes.

const AUTH_KEY = "taskwarden.ui.authorization";
let memoryAuthorization = null; // used when sessionStorage is unavailable
const deniedListeners = new Set();

/** The stored Authorization header value, or null. */
export function storedAuthorization() {
  try {
    return sessionStorage.getItem(AUTH_KEY);
  } catch {
    return memoryAuthorization;
  }
}

/** Keep `value` (an Authorization header value) for this tab; null forgets it. */
export function storeAuthorization(value) {
  memoryAuthorization = value;
  try {
    if (value) sessionStorage.setItem(AUTH_KEY, value);
    else sessionStorage.removeItem(AUTH_KEY);
  } catch {
    // Storage may be disabled: the credentials then last as long as this page.
  }
}

/** Base64 of a string's UTF-8 bytes (btoa alone takes only Latin-1). */
function base64Utf8(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** "ApiKey …" from the `encoded` value of a created key; anything else (such as "id:api_key")
 * is encoded here, so the header is always sendable and the server says what is wrong. */
export function apiKeyAuthorization(key) {
  let value = key.trim().replace(/^apikey\s+/i, "");
  if (!/^[A-Za-z0-9+/_-]+=*$/.test(value)) value = base64Utf8(value);
  return `ApiKey ${value}`;
}

/** "Basic …" for a user name and password. */
export function basicAuthorization(username, password) {
  return `Basic ${base64Utf8(`${username}:${password}`)}`;
}

/** listener(status, path) runs when a request made with the stored credentials answers 401 or 403. */
export function onDenied(listener) {
  deniedListeners.add(listener);
}

/** One request; never throws. Answers {ok, status, body (parsed JSON or null), text, network}.
 * `authorization`: this header value instead of the stored one (a sign-in attempt), which also
 * keeps a 401 or 403 from reaching the onDenied listeners. */
export async function call(method, path, params = {}, { timeoutMs = DEFAULT_TIMEOUT_MS, authorization } = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const qs = query.toString();
  const url = qs ? `${path}?${qs}` : path;
  const headers = {
    "X-Opaque-Id": UI_OPAQUE_ID,
    Accept: "application/json, text/plain",
    // Marks the page's own requests: their 401 then carries no Basic challenge, so the browser
    // never shows its own login box over the page's sign-in panel.
    "X-Requested-With": "XMLHttpRequest",
  };
  const sent = authorization === undefined ? storedAuthorization() : authorization;
  if (sent) headers.Authorization = sent;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      // No cookies and no HTTP auth the browser cached itself: only the header above counts
      // (and a browser never prompts for credentials on such a request)
      credentials: "omit",
      cache: "no-store",
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const network = err && err.name === "TimeoutError"
      ? `no answer within ${Math.round(timeoutMs / 1000)} s`
      : `the node could not be reached (${err && err.message ? err.message : err})`;
    return { ok: false, status: 0, body: null, text: "", network };
  }
  const text = await response.text();
  let body = null;
  if ((response.headers.get("content-type") || "").includes("json")) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if ((response.status === 401 || response.status === 403) && authorization === undefined) {
    for (const listener of deniedListeners) listener(response.status, path);
  }
  return { ok: response.ok, status: response.status, body, text, network: "" };
}

/** A task id as one path segment. */
export function taskPath(id, suffix = "") {
  return `/_tasks/${encodeURIComponent(id)}${suffix}`;
}

/** "type: reason" of one error object, and the chain of its causes. */
export function describeErrorObject(error) {
  if (error === null || error === undefined) return { title: "unknown error", lines: [] };
  if (typeof error !== "object") return { title: String(error), lines: [] };
  const title = [error.type, error.reason].filter(Boolean).join(": ") || JSON.stringify(error);
  const lines = [];
  // A failed sign-in says here what was wrong with the credentials sent.
  if (typeof error.additional_unsuccessful_credentials === "string") {
    lines.push(error.additional_unsuccessful_credentials);
  }
  let cause = error.caused_by;
  for (let depth = 0; cause && depth < 10; depth += 1) {
    lines.push(`caused by ${[cause.type, cause.reason].filter(Boolean).join(": ")}`);
    cause = cause.caused_by;
  }
  return { title, lines };
}

/** A failed call as {title, status, lines}: the error body when there is one, else the raw text. */
export function describeFailure(result) {
  if (result.status === 0) return { title: "no answer", status: 0, lines: [result.network] };
  const error = result.body && result.body.error;
  if (error && typeof error === "object") {
    return { ...describeErrorObject(error), status: result.body.status ?? result.status };
  }
  if (typeof error === "string") return { title: error, status: result.status, lines: [] };
  const text = (result.text || "").trim();
  return { title: `HTTP ${result.status}`, status: result.status, lines: text ? [text.slice(0, 2000)] : [] };
}

/** node_failures and task_failures of a list or cancel answer, as readable entries. */
export function describePartialFailures(body) {
  const out = [];
  for (const failure of (body && body.node_failures) || []) {
    const parts = describeErrorObject(failure);
    out.push({ ...parts, title: `node [${failure.node_id ?? "?"}]: ${parts.title}` });
  }
  for (const failure of (body && body.task_failures) || []) {
    const parts = describeErrorObject(failure.reason);
    out.push({ ...parts, title: `task [${failure.task_id ?? "?"}] on node [${failure.node_id ?? "?"}]: ${parts.title}` });
  }
  return out;
}

/** The tasks of a list or cancel answer in any group_by shape, as [id, info] pairs. */
export function tasksOf(body) {
  const out = [];
  const add = (id, info) => {
    out.push([id ?? `${info.node}:${info.id}`, info]);
    for (const child of info.children || []) add(null, child);
  };
  if (body && body.nodes) {
    for (const node of Object.values(body.nodes)) {
      for (const [id, info] of Object.entries(node.tasks || {})) add(id, info);
    }
  }
  if (body && Array.isArray(body.tasks)) body.tasks.forEach((info) => add(null, info));
  else if (body && body.tasks) for (const [id, info] of Object.entries(body.tasks)) add(id, info);
  return out;
}
