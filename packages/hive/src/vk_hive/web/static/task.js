// The task page: its status, text, assignments and executions follow the activity stream;
// the log of the running execution follows `follow_logs` (backlog, then the tail).

import { ApiError, api, clearError, el, showError } from "./common.js";

export const TITLES = {
  todo: "To do",
  "in-progress": "In progress",
  "in-review": "In review",
  done: "Done",
  cancelled: "Cancelled",
};

// vk_shared.status: every legal transition (an operator may make any of them), column order.
const LEGAL = {
  todo: ["in-progress", "cancelled"],
  "in-progress": ["in-review", "done", "cancelled"],
  "in-review": ["in-progress", "done", "cancelled"],
  done: ["cancelled"],
  cancelled: [],
};

const POLL_MS = 1500;
const MAX_LOG_LINES = 5000; // the newest lines a page keeps of a long run

function when(iso) {
  if (!iso) return "";
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? iso : at.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

/** The execution processes in a `GET /v1/tasks/{id}/executions` answer, oldest first. */
function processesOf(data) {
  const list = Array.isArray(data) ? data : (data && (data.attempts || data.executions)) || [];
  const out = [];
  for (const item of list) {
    const attempt = item.attempt || item;
    if (Array.isArray(item.processes)) {
      for (const process of item.processes) {
        out.push({ ...process, node_id: process.node_id || attempt.node_id, branch: attempt.branch });
      }
    } else if (item.id && item.status && item.run_reason !== undefined) {
      out.push(item);
    }
  }
  return out.sort((a, b) => String(a.started_at).localeCompare(String(b.started_at)));
}

export class TaskPage {
  constructor(data, live, nodeNames) {
    this.task = data.task;
    this.live = live;
    this.names = nodeNames;
    this.article = document.getElementById("task");
    this.error = document.getElementById("action-error");
    this.log = document.getElementById("log");
    this.following = this.log.dataset.processId || null;
    this.followingRunning = false;
    this.active = !document.getElementById("cancel-run").hidden;
    this.refreshing = false;
    // Where the history table ends (the page rendered it up to the task's current version).
    this.historyStatus = this.task.status;
    this.historyVersion = this.task.version;
  }

  start() {
    if (this.following) {
      this.followingRunning = /running/.test(document.getElementById("log-source").textContent);
      this.live.follow(this.following, Number(this.log.dataset.after || 0));
    }
    this.wire();
    setInterval(() => this.poll(), POLL_MS);
  }

  wire() {
    document.getElementById("moves").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-move]");
      if (button) this.act(() => api("PATCH", `/tasks/${this.task.id}`, {
        status: button.dataset.move,
        version: this.task.version,
      }));
    });
    document.getElementById("edit-task").addEventListener("submit", (event) => {
      event.preventDefault();
      const fields = new FormData(event.target);
      const details = event.target.closest("details");
      this.act(() => api("PATCH", `/tasks/${this.task.id}`, {
        title: String(fields.get("title") || "").trim(),
        description: String(fields.get("description") || ""),
        version: this.task.version,
      })).then((done) => {
        if (done) details.open = false;
      });
    });
    document.getElementById("dispatch").addEventListener("submit", (event) => {
      event.preventDefault();
      const node = String(new FormData(event.target).get("node_id") || "");
      this.act(() => api("POST", `/tasks/${this.task.id}/assign`, node ? { node_id: node } : {}));
    });
    document.getElementById("cancel-run").addEventListener("click", () => {
      this.act(() => api("PATCH", `/tasks/${this.task.id}`, { status: "cancelled" }));
    });
  }

  async act(call) {
    clearError(this.error);
    try {
      const result = await call();
      if (result && result.version !== undefined && result.id === this.task.id) this.show(result);
      this.refresh();
      return true;
    } catch (failure) {
      showError(this.error, failure);
      return false;
    }
  }

  /** An activity event of the page's project. */
  applyActivity(message) {
    const task = message.payload && message.payload.task;
    if (!task || task.id !== this.task.id) return;
    if (task.version > this.historyVersion) {
      const previous = this.historyStatus;
      document.querySelector("#history tbody").append(el("tr", {},
        el("td", {}, el("time", { datetime: message.created_at, text: when(message.created_at) })),
        el("td", { text: message.event_type }),
        el("td", { text: previous !== task.status ? `${previous} → ${task.status}` : task.status }),
        el("td", { text: String(task.version) }),
      ));
      this.historyStatus = task.status;
      this.historyVersion = task.version;
    }
    if (message.event_type === "task.deleted" || task.deleted_at) {
      showError(this.error, "This task was deleted.");
    }
    this.show(task);
    this.refresh();
  }

  show(task) {
    if (task.version < this.task.version) return;
    this.task = task;
    this.article.dataset.version = String(task.version);
    this.article.dataset.status = task.status;
    document.getElementById("task-title").textContent = task.title;
    document.getElementById("task-description").textContent = task.description || "";
    document.getElementById("task-version").textContent = String(task.version);
    const edit = document.getElementById("edit-task");
    if (!edit.closest("details").open) {
      edit.elements.title.value = task.title;
      edit.elements.description.value = task.description || "";
    }
    const badge = document.getElementById("task-status");
    badge.textContent = TITLES[task.status] || task.status;
    badge.className = `badge status-${task.status}`;
    const node = document.getElementById("task-node");
    node.hidden = !task.executing_node_id;
    node.querySelector("[data-node-name]").textContent = task.executing_node_id
      ? this.names[task.executing_node_id] || task.executing_node_id.slice(0, 8)
      : "";
    document.getElementById("moves").replaceChildren(
      ...(LEGAL[task.status] || []).map((to) =>
        el("button", { type: "button", "data-move": to, text: `Move to ${TITLES[to]}` })),
    );
  }

  /** Executions have no stream message: while a dispatched run has not started, re-read them
   * every tick; while it runs, every fourth (the lease countdown follows its renewals). */
  poll() {
    this.ticks = (this.ticks || 0) + 1;
    const waiting = this.active && (!this.following || !this.followingRunning);
    const running = this.task.status === "in-progress" && this.ticks % 4 === 0;
    if (waiting || running) this.refresh();
  }

  /** Re-read the assignments and executions (REST) and follow the running execution. */
  async refresh() {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const assignments = await api("GET", `/tasks/${this.task.id}/assignments`);
      this.showAssignments(assignments);
      let executions = null;
      try {
        executions = await api("GET", `/tasks/${this.task.id}/executions`);
      } catch (failure) {
        if (!(failure instanceof ApiError) || failure.status !== 404) throw failure;
      }
      const processes = executions ? processesOf(executions) : [];
      if (processes.length) this.showExecutions(processes);
      else await this.executionsFromPage();
    } catch {
      // a failed read is retried by the next poll or event
    } finally {
      this.refreshing = false;
    }
  }

  showAssignments(rows) {
    this.active = rows.some((a) => !a.completed_at);
    document.getElementById("cancel-run").hidden = !this.active;
    const body = document.querySelector("#assignments tbody");
    if (!rows.length) return;
    document.querySelector("#dispatch button[type=submit]").textContent = "Re-dispatch";
    body.replaceChildren(...rows.map((a) => el("tr", { "data-assignment-id": a.id },
      el("td", { text: this.names[a.node_id] || a.node_id }),
      el("td", { text: String(a.fencing_token) }),
      el("td", {}, el("time", { datetime: a.assigned_at, text: when(a.assigned_at) })),
      el("td", {}, !a.completed_at && a.lease_expires_at
        ? el("time", { "data-countdown": "", datetime: a.lease_expires_at, text: when(a.lease_expires_at) })
        : "—"),
      el("td", { text: a.execution_status + (a.completed_at ? ` at ${when(a.completed_at)}` : "") }),
    )));
  }

  /** A hive without the executions endpoint: the same rows, read from this page re-rendered. */
  async executionsFromPage() {
    const response = await fetch(location.pathname, { credentials: "same-origin" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const rows = [...fresh.querySelectorAll("#executions tbody tr[data-process-id]")];
    if (!rows.length) return;
    document.querySelector("#executions tbody").replaceChildren(
      ...rows.map((row) => document.importNode(row, true)));
    this.follow(rows.map((row) => ({
      id: row.dataset.processId,
      status: row.dataset.status,
      run_reason: row.dataset.runReason,
    })));
  }

  showExecutions(processes) {
    if (!processes.length) return;
    const body = document.querySelector("#executions tbody");
    body.replaceChildren(...processes.map((p) => el("tr", {
      "data-process-id": p.id, "data-status": p.status, "data-run-reason": p.run_reason },
      el("td", { text: this.names[p.node_id] || p.node_id || "" }),
      el("td", {}, el("code", { text: p.branch || "" })),
      el("td", { text: p.run_reason }),
      el("td", { text: p.status }),
      el("td", { text: p.exit_code === null || p.exit_code === undefined ? "" : String(p.exit_code) }),
      el("td", {}, el("time", { datetime: p.started_at, text: when(p.started_at) })),
    )));
    this.follow(processes);
  }

  /** Follow the running execution, else the latest (processes oldest first). */
  follow(processes) {
    const running = processes.filter((p) => p.status === "running");
    const target = running.length ? running[running.length - 1] : processes[processes.length - 1];
    this.followingRunning = target.status === "running";
    document.getElementById("log-source").textContent = `${target.run_reason} · ${target.status}`;
    if (target.id !== this.following) {
      if (this.following) this.live.unfollow(this.following);
      this.following = target.id;
      this.log.dataset.processId = target.id;
      this.log.replaceChildren();
      this.live.follow(target.id, 0);
    }
  }

  /** Lines of a followed execution (ids increasing, none twice). */
  appendLines(processId, lines) {
    if (processId !== this.following) return;
    const atBottom = this.log.scrollTop + this.log.clientHeight >= this.log.scrollHeight - 8;
    this.log.append(...lines.map((line) =>
      el("span", { class: "line", "data-line-id": line.id, "data-stream": line.output_type, text: line.content })));
    while (this.log.childElementCount > MAX_LOG_LINES) this.log.firstElementChild.remove();
    if (atBottom) this.log.scrollTop = this.log.scrollHeight;
  }
}
