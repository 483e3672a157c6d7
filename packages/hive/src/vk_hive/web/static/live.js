// The live stream of one organization: GET /v1/ws (the session cookie authenticates; same
// origin). Reconnects with backoff; after a reconnect it resumes every tracked project from the
// last seq it applied (subscribe) and every followed execution after the last line it showed.
// While the socket is down (a proxy without WebSocket support, a restarting hive), the tracked
// projects are read from GET /v1/activity instead, so the page stays current.

import { api } from "./common.js";

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15000;
const POLL_MS = 1000;

export class Live {
  /**
   * @param {string} organizationId
   * @param {{activity?: Function, nodeStatus?: Function, logLines?: Function,
   *          resync?: Function, state?: Function, hello?: Function}} handlers
   */
  constructor(organizationId, handlers) {
    this.organizationId = organizationId;
    this.handlers = handlers;
    this.cursors = new Map(); // project id -> last applied seq
    this.follows = new Map(); // execution process id -> last shown line id
    this.socket = null;
    this.failures = 0;
    this.timer = null;
    this.poller = null;
  }

  /** Apply this project's events after `after` (the seq the page was rendered at). */
  track(projectId, after) {
    this.cursors.set(projectId, after);
    this.send({ type: "subscribe", project_id: projectId, after });
  }

  follow(processId, afterId) {
    this.follows.set(processId, afterId);
    this.send({ type: "follow_logs", execution_process_id: processId, after_id: afterId });
  }

  unfollow(processId) {
    if (this.follows.delete(processId)) {
      this.send({ type: "unfollow_logs", execution_process_id: processId });
    }
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams({ organization_id: this.organizationId });
    const socket = new WebSocket(`${scheme}//${location.host}/v1/ws?${query}`);
    this.socket = socket;
    this.state("connecting");
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.state("offline");
      if (this.failures >= 1) this.startPolling();
      this.retry();
    });
  }

  retry() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.failures);
    this.failures += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), base / 2 + Math.random() * (base / 2));
  }

  startPolling() {
    if (this.poller || !this.cursors.size) return;
    this.poller = setInterval(() => this.poll(), POLL_MS);
  }

  stopPolling() {
    clearInterval(this.poller);
    this.poller = null;
  }

  async poll() {
    for (const [projectId, after] of this.cursors) {
      let page;
      try {
        page = await api("GET", `/activity?project_id=${projectId}&after=${after}&limit=500`);
      } catch {
        return;
      }
      if (page.resync_required) {
        this.handlers.resync?.({ project_id: projectId, latest_seq: page.latest_seq });
        return;
      }
      for (const event of page.events) this.receive(JSON.stringify({ ...event, type: "activity" }));
    }
  }

  state(name) {
    this.handlers.state?.(name);
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    switch (message.type) {
      case "hello":
        this.failures = 0;
        this.stopPolling();
        this.state("live");
        for (const [projectId, after] of this.cursors) {
          this.send({ type: "subscribe", project_id: projectId, after });
        }
        for (const [processId, afterId] of this.follows) {
          this.send({ type: "follow_logs", execution_process_id: processId, after_id: afterId });
        }
        this.handlers.hello?.(message);
        break;
      case "activity": {
        const cursor = this.cursors.get(message.project_id);
        if (cursor !== undefined) {
          if (message.seq <= cursor) return; // already applied (replay after a reconnect)
          this.cursors.set(message.project_id, message.seq);
        }
        this.handlers.activity?.(message);
        break;
      }
      case "log_lines": {
        const after = this.follows.get(message.execution_process_id);
        if (after === undefined) return;
        const lines = (message.lines || []).filter((line) => line.id > after);
        if (!lines.length) return;
        this.follows.set(message.execution_process_id, lines[lines.length - 1].id);
        this.handlers.logLines?.(message.execution_process_id, lines);
        break;
      }
      case "node_status":
        this.handlers.nodeStatus?.(message);
        break;
      case "resync_required":
        this.handlers.resync?.(message);
        break;
      case "error":
        console.warn("live stream:", message.code, message.message);
        break;
      default:
        break; // ping and anything newer
    }
  }
}
