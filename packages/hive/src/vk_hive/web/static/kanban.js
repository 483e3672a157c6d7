// The kanban of one project: activity events create, update, move and remove cards.

import { api, clearError, el, labelChip, showError } from "./common.js";

function cardOf(board, taskId) {
  for (const card of board.querySelectorAll(".card[data-task-id]")) {
    if (card.dataset.taskId === taskId) return card;
  }
  return null;
}

function column(board, status) {
  for (const col of board.querySelectorAll(".column[data-status]")) {
    if (col.dataset.status === status) return col.querySelector(".cards");
  }
  return null;
}

function recount(board) {
  for (const col of board.querySelectorAll(".column")) {
    const count = col.querySelector("[data-col-count]");
    if (count) count.textContent = String(col.querySelectorAll(".card").length);
  }
}

function newCard(task) {
  return el(
    "article",
    { class: "card", "data-task-id": task.id },
    el("a", { class: "card-title", href: `/tasks/${task.id}` }),
    el("ul", { class: "labels", "aria-label": "Labels" }),
    el("p", { class: "card-node muted", hidden: true }, "on ", el("span", { "data-node-name": "" })),
  );
}

/** Re-read a card's labels (after the page attached some). */
export function refreshLabels(board, taskId) {
  const card = cardOf(board, taskId);
  if (card) loadLabels(card, taskId);
}

async function loadLabels(card, taskId) {
  try {
    const labels = await api("GET", `/tasks/${taskId}/labels`);
    card.querySelector(".labels").replaceChildren(...labels.map(labelChip));
  } catch {
    // the card stays without labels; a reload shows them
  }
}

/** Apply one activity event of the page's project to the board. */
export function applyActivity(board, message, nodeNames) {
  const task = message.payload && message.payload.task;
  if (!task) return;
  let card = cardOf(board, task.id);
  if (task.swarm_project_id !== board.dataset.projectId && !card) return;
  const gone = task.swarm_project_id !== board.dataset.projectId; // moved to another project
  if (gone || message.event_type === "task.deleted" || task.deleted_at) {
    if (card) card.remove();
    recount(board);
    return;
  }
  if (card && Number(card.dataset.version) > task.version) return; // older news
  const fresh = !card;
  if (fresh) card = newCard(task);
  card.dataset.version = String(task.version);
  card.querySelector(".card-title").textContent = task.title;
  const node = card.querySelector(".card-node");
  const nodeId = task.executing_node_id;
  node.hidden = !nodeId;
  node.querySelector("[data-node-name]").textContent = nodeId
    ? nodeNames[nodeId] || nodeId.slice(0, 8)
    : "";
  if (fresh || card.dataset.status !== task.status) {
    card.dataset.status = task.status;
    const target = column(board, task.status);
    if (target) target.prepend(card);
  }
  if (fresh) loadLabels(card, task.id);
  recount(board);
}

/** The "New task" form: POST /v1/tasks, then attach the chosen labels. */
export function wireCreate(form, board) {
  const error = form.querySelector(".form-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(error);
    const fields = new FormData(form);
    const body = {
      project_id: form.dataset.projectId,
      title: String(fields.get("title") || "").trim(),
      executor: String(fields.get("executor") || "").trim(),
      start_attempt: fields.get("start_attempt") === "on",
    };
    const description = String(fields.get("description") || "");
    if (description.trim()) body.description = description;
    const node = String(fields.get("node_id") || "");
    if (node) body.node_id = node;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const created = await api("POST", "/tasks", body);
      const labelIds = fields.getAll("labels");
      for (const labelId of labelIds) {
        await api("POST", `/tasks/${created.task.id}/labels/${labelId}`);
      }
      if (labelIds.length) refreshLabels(board, created.task.id);
      form.reset();
      if (created.dispatch_error) {
        showError(error, `Created, but not dispatched: ${created.dispatch_error}`);
      }
    } catch (failure) {
      showError(error, failure);
    } finally {
      button.disabled = false;
    }
  });
}
