// The task tree of a `group_by=parents` listing: sorted, indexed, and filtered on the client.

import { UI_OPAQUE_ID } from "./api.js";

const opaqueOf = (task) => (task.headers && task.headers["X-Opaque-Id"]) || "";

function byStart(a, b) {
  return (a.task.start_time_in_millis ?? 0) - (b.task.start_time_in_millis ?? 0)
    || String(a.task.node).localeCompare(String(b.task.node))
    || (a.task.id ?? 0) - (b.task.id ?? 0);
}

/** [{id, task, children}] from the `tasks` object, oldest first at every level. */
export function toTree(tasks) {
  const convert = (id, info) => ({
    id,
    task: info,
    children: (info.children || []).map((child) => convert(`${child.node}:${child.id}`, child)).sort(byStart),
  });
  return Object.entries(tasks || {}).map(([id, info]) => convert(id, info)).sort(byStart);
}

/** id -> {task, parent, descendants, children (a count)} for every task of the tree. */
export function indexTree(tree) {
  const index = new Map();
  const walk = (node, parent) => {
    let descendants = 0;
    for (const child of node.children) descendants += 1 + walk(child, node.id);
    index.set(node.id, { task: node.task, parent, descendants, children: node.children.length });
    return descendants;
  };
  tree.forEach((node) => walk(node, null));
  return index;
}

/** The tree without this page's own requests (unless shown), and only the tasks whose
 * X-Opaque-Id contains `opaque`, with their ancestors kept as context. */
export function filterTree(tree, { showOwn, opaque }) {
  const wanted = opaque.trim().toLowerCase();
  const keep = (list) => {
    const out = [];
    for (const node of list) {
      if (!showOwn && opaqueOf(node.task) === UI_OPAQUE_ID) continue;
      const children = keep(node.children);
      const matches = !wanted || opaqueOf(node.task).toLowerCase().includes(wanted);
      if (matches || children.length) out.push({ ...node, children, context: !matches });
    }
    return out;
  };
  return keep(tree);
}
