// The swarm board's one entry module: reads the page's data block, opens the live stream and
// hands its messages to the open page.

import { api, applyNodeStatus, pageData, paintLabels, tickTimes } from "./common.js";
import { applyActivity, wireCreate } from "./kanban.js";
import { Live } from "./live.js";
import { TaskPage } from "./task.js";

const LIVE_TEXT = { live: "live", connecting: "connecting…", offline: "offline" };

function main() {
  const data = pageData();
  paintLabels();
  tickTimes();
  setInterval(tickTimes, 1000);

  const orgSelect = document.getElementById("org-select");
  if (orgSelect) orgSelect.addEventListener("change", () => orgSelect.form.submit());

  if (!data.organization_id) return;
  const names = data.nodes || {};
  const liveState = document.getElementById("live-state");
  const handlers = {
    state(name) {
      liveState.textContent = LIVE_TEXT[name] || name;
      liveState.dataset.state = name;
    },
    resync() {
      location.reload();
    },
    nodeStatus(message) {
      const known = applyNodeStatus(message, names);
      if (!known && (data.page === "nodes" || data.page === "home")) location.reload();
    },
  };
  const live = new Live(data.organization_id, handlers);

  if (data.page === "board") {
    const board = document.getElementById("kanban");
    handlers.activity = (message) => applyActivity(board, message, names);
    live.track(data.project_id, data.after);
    wireCreate(document.getElementById("create-task"), board);
  } else if (data.page === "task") {
    const page = new TaskPage(data, live, names);
    handlers.activity = (message) => page.applyActivity(message);
    handlers.logLines = (processId, lines) => page.appendLines(processId, lines);
    if (data.project_id) live.track(data.project_id, data.after);
    page.start();
  } else if (data.page === "home") {
    handlers.activity = scheduleCounts(data.organization_id);
  }
  live.connect();
}

/** On the home page: re-read the projects' task counts (at most every half second). */
function scheduleCounts(organizationId) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(async () => {
      timer = null;
      try {
        const projects = await api("GET", `/swarm/projects?organization_id=${organizationId}`);
        for (const project of projects) {
          const item = document.querySelector(`[data-project-id="${project.id}"]`);
          if (!item) continue;
          for (const cell of item.querySelectorAll("[data-count]")) {
            cell.textContent = String(project.task_counts[cell.dataset.count] || 0);
          }
        }
      } catch {
        // the next event tries again
      }
    }, 500);
  };
}

main();
