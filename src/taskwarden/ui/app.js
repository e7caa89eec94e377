// taskwarden's web UI: a live tree of every task on every node, built from the public REST API only.

import { call, describeFailure, describePartialFailures, onDenied, taskPath } from "./api.js";
import { Session } from "./auth.js";
import { CancelLog, confirmCancel } from "./cancels.js";
import { errorBox, h, setText } from "./dom.js";
import { DetailPane, HotThreads, WatchList, outcomeOf } from "./panels.js";
import { TaskTable } from "./tasktable.js";
import { filterTree, indexTree, toTree } from "./tree.js";

const REFRESH_MS = 1000;
const NODES_EVERY_TICKS = 10;
const AUTO_COLLAPSE_OVER = 20; // a task with more children than this starts collapsed
const MAX_ROWS = 1000; // more rows than this would make every refresh slow
const LIVE_STATES = new Set(["running", "cancelling", "stopping"]);

const $ = (id) => document.getElementById(id);

const state = {
  paused: false,
  listed: false, // whether the last list answer is current
  tree: [], // [{id, task, children}], sorted
  index: new Map(), // id -> {task, parent, descendants}
  nodes: new Map(), // node id -> nodes info
  nodesKey: "",
  expanded: new Map(), // id -> the user's choice
  selected: new Set(),
  pending: new Set(), // cancels sent from this page and not answered yet
  checking: new Set(), // watched tasks whose outcome is being fetched
  visibleIds: [],
  ticks: 0,
  reloadNodes: true,
  polling: false, // refreshing every second: not while signed out
  epoch: 0, // bumped when who the page acts as changes: older answers are dropped
};

const nodeName = (id) => (state.nodes.get(id) || {}).name || id || "";

const table = new TaskTable($("task-rows"), {
  open: (id) => openDetail(id),
  cancel: (id) => requestCancel([id]),
  toggle: (id) => {
    const node = state.index.get(id);
    state.expanded.set(id, !isExpanded(id, node ? node.children : 0));
    render();
  },
  select: (id, checked) => {
    if (checked) state.selected.add(id);
    else state.selected.delete(id);
    render();
  },
});
const watch = new WatchList($("watched"), $("watched-clear"), (id) => openDetail(id));
const detail = new DetailPane($("detail"), {
  nodeName,
  onOpen: (id) => openDetail(id),
  onOutcome: (id, action, result) => watch.update(id, { action, state: outcomeOf(result) }),
});
const cancelLog = new CancelLog($("cancel-log"), (id) => openDetail(id));
const hotThreads = new HotThreads($("hot-threads"));
const session = new Session($("signin"), $("signed-in"), sessionChanged);
// A call refused for its credentials (401) or its role (403): ask again who the page is.
onDenied(() => session.check());

// ---- the tree ----

function isExpanded(id, childCount) {
  return state.expanded.has(id) ? state.expanded.get(id) : childCount <= AUTO_COLLAPSE_OVER;
}

function hasPendingAncestor(id) {
  for (let cur = id; cur; cur = (state.index.get(cur) || {}).parent) {
    if (state.pending.has(cur)) return true;
  }
  return false;
}

function render() {
  const items = [];
  let total = 0;
  const walk = (node, depth) => {
    if (items.length >= MAX_ROWS) {
      countOnly(node);
      return;
    }
    total += 1;
    const expanded = isExpanded(node.id, node.children.length);
    items.push({
      id: node.id,
      task: node.task,
      depth,
      childCount: node.children.length,
      expanded,
      context: node.context,
      nodeName: nodeName(node.task.node),
      pending: hasPendingAncestor(node.id),
      selected: state.selected.has(node.id),
      open: detail.id === node.id,
    });
    if (expanded) node.children.forEach((child) => walk(child, depth + 1));
    else node.children.forEach(countOnly);
  };
  const countOnly = (node) => {
    total += 1;
    node.children.forEach(countOnly);
  };
  const filters = { showOwn: $("show-own").checked, opaque: $("filter-opaque").value };
  filterTree(state.tree, filters).forEach((node) => walk(node, 0));
  table.render(items);

  const selectable = session.canManage
    ? items.filter((i) => i.task.cancellable !== false && !i.task.cancelled && !i.pending)
    : [];
  state.visibleIds = selectable.map((i) => i.id);
  setText($("task-count"), `(${total} ${total === 1 ? "task" : "tasks"})`);
  $("no-tasks").hidden = items.length > 0 || !state.listed;
  const limited = $("row-limit");
  limited.hidden = items.length < MAX_ROWS;
  setText(limited, `Showing the first ${MAX_ROWS} rows of ${total} tasks: narrow the filters or collapse trees.`);
  const chosen = state.selected.size;
  const bulk = $("cancel-selected");
  setText(bulk, `Cancel selected (${chosen})`);
  bulk.disabled = chosen === 0;
  const all = $("select-all");
  const shownChosen = state.visibleIds.filter((id) => state.selected.has(id)).length;
  all.checked = shownChosen > 0 && shownChosen === state.visibleIds.length;
  all.indeterminate = shownChosen > 0 && shownChosen < state.visibleIds.length;
  all.disabled = state.visibleIds.length === 0;
}

// ---- refreshing ----

function apiFilters() {
  const actions = $("filter-action").value.split(",").map((s) => s.trim()).filter(Boolean).join(",");
  return { actions, nodes: $("filter-node").value };
}

function showBanner(el, boxes) {
  el.replaceChildren(...boxes);
  el.hidden = boxes.length === 0;
}

async function refresh() {
  if (session.status === "unknown") session.check();
  const epoch = state.epoch;
  state.ticks += 1;
  const filters = apiFilters();
  const jobs = [call("GET", "/_tasks", { group_by: "parents", detailed: "true", ...filters })];
  if (state.reloadNodes || state.ticks % NODES_EVERY_TICKS === 1) jobs.push(loadNodes());
  if (detail.wantsRefresh) jobs.push(detail.refresh());
  const [list] = await Promise.all(jobs);
  if (epoch !== state.epoch) return;
  if (list.ok) {
    state.listed = true;
    state.tree = toTree(list.body.tasks);
    state.index = indexTree(state.tree);
    showBanner($("list-error"), []);
    showBanner($("list-failures"), describePartialFailures(list.body).map((p) => errorBox(p, "list-failure")));
    $("task-rows").closest("table").classList.remove("stale");
    setText($("last-update"), `updated ${new Date().toLocaleTimeString()}`);
    for (const [, entry] of state.index) {
      if (entry.task.node && !state.nodes.has(entry.task.node)) state.reloadNodes = true;
    }
    pruneSelection();
    checkWatched(!filters.actions && !filters.nodes);
  } else {
    showBanner($("list-error"), [errorBox(describeFailure(list), "list-error-body")]);
    $("task-rows").closest("table").classList.add("stale");
  }
  render();
}

function pruneSelection() {
  for (const id of [...state.selected]) {
    const entry = state.index.get(id);
    if (!entry || entry.task.cancelled || entry.task.cancellable === false) state.selected.delete(id);
  }
}

/** Watched tasks still listed are live; one that left the listing gets its stored outcome once. */
function checkWatched(complete) {
  for (const item of watch.items) {
    const entry = state.index.get(item.id);
    if (entry) {
      if (!state.pending.has(item.id)) {
        watch.update(item.id, { action: entry.task.action, state: entry.task.cancelled ? "stopping" : "running" });
      }
    } else if (complete && LIVE_STATES.has(item.state) && !state.pending.has(item.id)) {
      fetchOutcome(item.id);
    }
  }
}

async function fetchOutcome(id) {
  if (state.checking.has(id)) return;
  state.checking.add(id);
  try {
    const result = await call("GET", taskPath(id));
    const action = result.ok && result.body.task ? result.body.task.action : undefined;
    watch.update(id, { action, state: outcomeOf(result) || "unknown" });
  } finally {
    state.checking.delete(id);
  }
}

let timer = null;
let inFlight = false;
let again = false;

async function tick() {
  timer = null;
  if (!state.polling) return;
  if (inFlight) {
    again = true;
    return;
  }
  inFlight = true;
  try {
    await refresh();
  } catch (err) {
    showBanner($("list-error"), [errorBox({ title: "the page failed to refresh", lines: [String(err)] }, "list-error-body")]);
  } finally {
    inFlight = false;
  }
  if (again) {
    again = false;
    tick();
  } else if (!state.paused && state.polling) {
    timer = setTimeout(tick, REFRESH_MS);
  }
}

function refreshNow() {
  if (timer !== null) clearTimeout(timer);
  timer = null;
  tick();
}

// ---- nodes ----

async function loadNodes() {
  state.reloadNodes = false;
  const epoch = state.epoch;
  const result = await call("GET", "/_nodes");
  if (epoch !== state.epoch) return;
  if (!result.ok) {
    showBanner($("nodes-error"), [errorBox(describeFailure(result), "nodes-error-body")]);
    return;
  }
  showBanner($("nodes-error"), []);
  state.nodes = new Map(Object.entries(result.body.nodes || {}));
  const key = JSON.stringify([...state.nodes].map(([id, n]) => [id, n.name, n.http, n.roles, n.attributes]));
  if (key === state.nodesKey) return;
  state.nodesKey = key;
  renderNodes();
}

function renderNodes() {
  const sorted = [...state.nodes].sort(([, a], [, b]) => String(a.name).localeCompare(String(b.name)));
  const select = $("filter-node");
  const chosen = select.value;
  select.replaceChildren(h("option", { value: "" }, "all nodes"),
    ...sorted.map(([id, n]) => h("option", { value: id }, `${n.name} (${id})`)));
  if (chosen && !state.nodes.has(chosen)) select.append(h("option", { value: chosen }, chosen));
  select.value = chosen;
  $("node-rows").replaceChildren(...sorted.map(([id, n]) => h(
    "tr",
    { "data-testid": "node-row", "data-node-id": id },
    h("td", {}, n.name),
    h("td", { class: "task-id" }, id),
    h("td", {}, (n.http && n.http.publish_address) || n.transport_address || ""),
    h("td", {}, (n.roles || []).join(", ")),
    h("td", {}, Object.entries(n.attributes || {}).map(([k, v]) => `${k}=${v}`).join(", ")),
    h("td", {}, h("button", {
      type: "button", "data-testid": "hot-threads-button", "data-node-id": id,
      "aria-label": `Hot threads of ${n.name}`,
      onclick: () => hotThreads.show(id, n.name, $("hot-type").value),
    }, "Hot threads")),
  )));
}

async function loadClusterInfo() {
  const epoch = state.epoch;
  const result = await call("GET", "/");
  if (result.ok && epoch === state.epoch) {
    const b = result.body;
    setText($("cluster-info"), `cluster [${b.cluster_name}] · answered by [${b.name}] · version ${(b.version || {}).taskwarden || (b.version || {}).number || "?"}`);
  }
}

// ---- actions ----

/** Drop tasks whose ancestor is also chosen: cancelling the ancestor stops them too. */
function topmost(ids) {
  const chosen = new Set(ids);
  return ids.filter((id) => {
    for (let cur = (state.index.get(id) || {}).parent; cur; cur = (state.index.get(cur) || {}).parent) {
      if (chosen.has(cur)) return false;
    }
    return true;
  });
}

async function requestCancel(ids) {
  if (!session.canManage) return;
  const targets = topmost(ids).map((id) => {
    const entry = state.index.get(id) || { task: {}, descendants: 0 };
    return { id, action: entry.task.action, descendants: entry.descendants };
  });
  if (!targets.length || !(await confirmCancel($("confirm"), targets))) return;
  await Promise.all(targets.map((t) => cancelOne(t.id, t.action)));
}

async function cancelOne(id, action) {
  state.pending.add(id);
  state.selected.delete(id);
  watch.remember(id, action, "cancelling");
  render();
  try {
    await cancelLog.cancel(id, action);
  } finally {
    state.pending.delete(id);
  }
  await fetchOutcome(id);
  if (detail.id === id) detail.refresh();
  refreshNow();
}

function openDetail(id) {
  const entry = state.index.get(id);
  watch.remember(id, entry ? entry.task.action : "", entry ? (entry.task.cancelled ? "stopping" : "running") : "");
  detail.open(id).then(render);
  render();
}

// ---- who the page acts as ----

/** Signed in, out, or as someone else: the controls the role allows, and polling only with
 * credentials the node takes. */
function sessionChanged() {
  state.epoch += 1;
  const canManage = session.canManage;
  table.setCanCancel(canManage);
  for (const id of ["bulk", "select-column", "cancel-column"]) $(id).hidden = !canManage;
  if (!canManage) state.selected.clear();
  if (session.status === "signed-out") {
    stopPolling();
    forgetListing();
  } else {
    if (session.status === "signed-in" && !$("cluster-info").textContent) loadClusterInfo();
    startPolling();
  }
  render();
}

function startPolling() {
  if (state.polling) return;
  state.polling = true;
  state.reloadNodes = true;
  refreshNow();
}

function stopPolling() {
  state.polling = false;
  if (timer !== null) clearTimeout(timer);
  timer = null;
}

/** What was read with the credentials just dropped is not shown without them. */
function forgetListing() {
  state.listed = false;
  state.tree = [];
  state.index = new Map();
  state.nodes = new Map();
  state.nodesKey = "";
  renderNodes();
  detail.close();
  $("hot-threads").hidden = true;
  setText($("cluster-info"), "");
  setText($("last-update"), "");
  cancelLog.clear();
  for (const id of ["list-error", "list-failures", "nodes-error"]) showBanner($(id), []);
}

// ---- wiring ----

function syncUrl() {
  const params = new URLSearchParams();
  const values = { actions: $("filter-action").value.trim(), nodes: $("filter-node").value, opaque_id: $("filter-opaque").value.trim() };
  for (const [name, value] of Object.entries(values)) if (value) params.set(name, value);
  const qs = params.toString();
  history.replaceState(null, "", qs ? `?${qs}` : location.pathname);
}

function wire() {
  const initial = new URLSearchParams(location.search);
  $("filter-action").value = initial.get("actions") || "";
  $("filter-opaque").value = initial.get("opaque_id") || "";
  if (initial.get("nodes")) {
    $("filter-node").append(h("option", { value: initial.get("nodes") }, initial.get("nodes")));
    $("filter-node").value = initial.get("nodes");
  }

  let debounce = null;
  $("filter-action").addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { syncUrl(); refreshNow(); }, 300);
  });
  $("filter-node").addEventListener("change", () => { syncUrl(); refreshNow(); });
  $("filter-opaque").addEventListener("input", () => { syncUrl(); render(); });
  $("show-own").addEventListener("change", render);
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); refreshNow(); });

  $("pause").addEventListener("click", () => {
    state.paused = !state.paused;
    const button = $("pause");
    button.setAttribute("aria-pressed", String(state.paused));
    button.textContent = state.paused ? "Resume" : "Pause";
    if (state.paused) {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      setText($("last-update"), `paused at ${new Date().toLocaleTimeString()}`);
    } else {
      refreshNow();
    }
  });
  $("refresh-now").addEventListener("click", refreshNow);
  $("cancel-selected").addEventListener("click", () => requestCancel([...state.selected]));
  $("select-all").addEventListener("change", (event) => {
    for (const id of state.visibleIds) {
      if (event.target.checked) state.selected.add(id);
      else state.selected.delete(id);
    }
    render();
  });
}

wire();
// Polling starts once the node says who the page is (see sessionChanged).
session.check();
