// The swarm board's one entry module: reads the page's data block, opens the live stream and
// hands its messages to the open page.

import { applyNodeStatus, pageData, paintLabels, reloadParts, tickTimes } from "./common.js";
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
      if (!applyNodeStatus(message, names)) handlers.unknownNode?.();
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
  } else if (data.page === "home" || data.page === "nodes") {
    const parts = data.page === "home" ? [".projects", "#nodes-table tbody"] : ["#nodes-table tbody"];
    handlers.activity = partsReloader(parts);
    handlers.unknownNode = handlers.activity;
  }
  live.connect();
}

/** Home and nodes pages: re-read their node table and project counts (at most every half
 * second after an event, and every 15 s for the heartbeat ages). */
function partsReloader(selectors) {
  let timer = null;
  const reload = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      reloadParts(selectors);
    }, 500);
  };
  setInterval(reload, 15000);
  return reload;
}

main();
