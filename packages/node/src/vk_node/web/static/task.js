// A task: start an attempt, follow its processes' logs live, show its diff, stop, merge, open a PR.
import { api, flash, flashAfterReload, logSocket, sleep } from "./api.js";

const logBox = () => document.getElementById("log");
let following = 0; // a newer follow cancels the older one
let currentSocket = null; // the log socket of the process being followed
const MAX_LOG_LINES = 10000; // older lines leave the page (the API keeps them all)

const STATUS_LABELS = {
  todo: "To do",
  inprogress: "In progress",
  inreview: "In review",
  done: "Done",
  cancelled: "Cancelled",
};

function stateBadge(status) {
  const badge = document.createElement("span");
  badge.className = `state state-${status}`;
  badge.textContent = status;
  return badge;
}

function processRow(process) {
  const row = document.createElement("tr");
  row.dataset.processId = process.id;
  const cells = ["", "process-status", "process-exit", ""].map((name) => {
    const cell = document.createElement("td");
    if (name) cell.className = name;
    row.append(cell);
    return cell;
  });
  cells[0].textContent = process.run_reason;
  cells[3].textContent = new Date(process.started_at).toISOString().slice(11, 19);
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.action = "process-log";
  button.dataset.processId = process.id;
  button.textContent = "Log";
  const last = document.createElement("td");
  last.append(button);
  row.append(last);
  return row;
}

/** Bring the task's status and the attempt's process table up to date with the API's answer. */
function refreshAttempt(attemptId, processes, task) {
  const badge = document.getElementById("task-status");
  if (badge && STATUS_LABELS[task.status]) {
    badge.textContent = STATUS_LABELS[task.status];
    badge.className = `status status-${task.status}`;
    badge.title = `Status ${task.status}`;
  }
  const article = document.querySelector(`.attempt[data-attempt-id="${CSS.escape(attemptId)}"]`);
  if (!article) return;
  const body = article.querySelector(".processes tbody");
  for (const process of processes) {
    let row = body.querySelector(`tr[data-process-id="${CSS.escape(process.id)}"]`);
    if (!row) {
      row = processRow(process);
      body.append(row);
      article.querySelector(".no-process")?.remove();
    }
    row.querySelector(".process-status").replaceChildren(stateBadge(process.status));
    row.querySelector(".process-exit").textContent = process.exit_code ?? "";
  }
  const running = processes.some((p) => p.status === "running");
  article.dataset.running = String(running);
  article.querySelector(".attempt-running").hidden = !running;
}

function append(text, kind) {
  const box = logBox();
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const line = document.createElement("span");
  line.className = `line ${kind}`;
  line.textContent = `${text}\n`;
  box.append(line);
  while (box.childElementCount > MAX_LOG_LINES) box.firstElementChild.remove();
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function setLogStatus(text) {
  document.getElementById("log-status").textContent = text;
}

/** Stream one process's log into the panel; resolves when its socket closes. */
function followProcess(process, run) {
  const panel = document.getElementById("log-panel");
  panel.hidden = false;
  append(`— ${process.run_reason} (${process.id.slice(0, 8)}) —`, "marker");
  setLogStatus(`${process.run_reason}: streaming`);
  return new Promise((resolve) => {
    currentSocket?.close();
    const socket = logSocket(process.id);
    currentSocket = socket;
    let finished = false;
    socket.addEventListener("message", (event) => {
      if (run !== following) {
        socket.close();
        return;
      }
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "finished") {
        finished = true;
        const exit = frame.exit_code === null ? "" : `, exit ${frame.exit_code}`;
        setLogStatus(`${process.run_reason}: ${frame.status}${exit}`);
        return;
      }
      append(String(frame.content), frame.output_type === "stderr" ? "stderr" : "stdout");
    });
    socket.addEventListener("close", (event) => {
      if (!finished && run === following) {
        const why = event.code === 4404 ? "process not found" : "connection closed";
        setLogStatus(`${process.run_reason}: ${why}`);
        if (event.code !== 1000 && event.code !== 4404) {
          flash("The log stream was refused or cut (token missing or the node stopped?)");
        }
      }
      resolve();
    });
  });
}

/** Follow an attempt: each of its processes in turn, while its task is in progress. */
async function followAttempt(attemptId, taskId) {
  const run = ++following;
  logBox().textContent = "";
  const seen = new Set();
  const deadline = Date.now() + 15000; // for the first process to appear
  while (run === following) {
    let processes;
    let task;
    try {
      processes = await api("GET", `/task-attempts/${attemptId}/processes`);
      task = await api("GET", `/tasks/${taskId}`);
    } catch (error) {
      flash(`Could not read the attempt: ${error.message}`);
      return;
    }
    refreshAttempt(attemptId, processes, task);
    const next = processes.find((p) => !seen.has(p.id));
    if (next) {
      seen.add(next.id);
      await followProcess(next, run);
      continue;
    }
    const running = processes.some((p) => p.status === "running");
    if (!running && task.status !== "inprogress" && processes.length) break;
    if (!processes.length && Date.now() > deadline) break;
    await sleep(300);
  }
}

async function showDiff(attemptId) {
  const panel = document.getElementById("diff-panel");
  const pre = document.getElementById("diff");
  const files = document.getElementById("diff-files");
  const summary = document.getElementById("diff-summary");
  let diff;
  try {
    diff = await api("GET", `/task-attempts/${attemptId}/diff`);
  } catch (error) {
    flash(`No diff: ${error.message}`);
    return;
  }
  panel.hidden = false;
  pre.textContent = "";
  files.textContent = "";
  const cut = diff.truncated ? ` — cut at ${diff.limit_bytes} of ${diff.diff_bytes} bytes` : "";
  summary.textContent = `${diff.files.length} file(s) against ${diff.base_branch} @ ${diff.base_commit.slice(0, 10)}${cut}`;
  for (const file of diff.files) {
    const item = document.createElement("li");
    const counts = file.additions === null ? "binary" : `+${file.additions} −${file.deletions}`;
    item.textContent = `${file.path} (${counts})`;
    files.append(item);
  }
  if (!diff.diff) {
    pre.textContent = "No changes.";
  }
  const lines = diff.diff ? diff.diff.replace(/\n$/, "").split("\n") : [];
  for (const text of lines) {
    const line = document.createElement("span");
    let kind = "ctx";
    if (text.startsWith("+++") || text.startsWith("---") || text.startsWith("diff ")) kind = "file";
    else if (text.startsWith("+")) kind = "add";
    else if (text.startsWith("-")) kind = "del";
    else if (text.startsWith("@@")) kind = "hunk";
    line.className = `line ${kind}`;
    line.textContent = `${text}\n`;
    pre.append(line);
  }
  panel.scrollIntoView({ block: "nearest" });
}

async function act(button, attemptId, action, taskId) {
  button.disabled = true;
  try {
    if (action === "log") {
      await followAttempt(attemptId, taskId);
    } else if (action === "diff") {
      await showDiff(attemptId);
    } else if (action === "stop") {
      await api("POST", `/task-attempts/${attemptId}/stop`);
      flashAfterReload("Stopped");
      location.reload();
    } else if (action === "merge") {
      const merge = await api("POST", `/task-attempts/${attemptId}/merge`);
      flashAfterReload(`Merged into ${merge.target_branch_name} (${(merge.merge_commit || "").slice(0, 10)})`);
      location.reload();
    } else if (action === "pr") {
      const merge = await api("POST", `/task-attempts/${attemptId}/pr`, {});
      flash(`Pull request opened: ${merge.pr_url || merge.pr_number || "done"}`, "ok");
    }
  } catch (error) {
    flash(`${button.textContent} failed: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

export function initTask() {
  const taskId = document.getElementById("task-title").dataset.taskId;
  const form = document.getElementById("start-attempt");
  form?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const attempt = await api("POST", "/task-attempts", {
        task_id: taskId,
        executor: form.elements.executor.value,
        base_branch: form.elements.base_branch.value.trim(),
      });
      location.hash = `follow-${attempt.id}`;
      location.reload();
    } catch (error) {
      flash(`Could not start the attempt: ${error.message}`);
      button.disabled = false;
    }
  });
  for (const article of document.querySelectorAll(".attempt")) {
    const attemptId = article.dataset.attemptId;
    article.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      if (button.dataset.action === "process-log") {
        const run = ++following;
        logBox().textContent = "";
        const row = button.closest("tr");
        const process = { id: button.dataset.processId, run_reason: row.cells[0].textContent };
        followProcess(process, run);
        return;
      }
      act(button, attemptId, button.dataset.action, taskId);
    });
  }
  const wanted = location.hash.startsWith("#follow-") ? location.hash.slice(8) : "";
  const latest = document.querySelector(".attempt[data-latest]");
  if (wanted) {
    history.replaceState(null, "", location.pathname);
    followAttempt(wanted, taskId);
  } else if (latest && latest.dataset.running === "true") {
    followAttempt(latest.dataset.attemptId, taskId);
  }
}
