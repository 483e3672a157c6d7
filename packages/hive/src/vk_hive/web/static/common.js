// What every page shares: the REST client (session cookie + X-CSRF-Token), error display,
// relative times, label colours, node badges.

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

/** Call the hive's REST API (`/v1...`); throws ApiError with the server's message. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json", "X-CSRF-Token": csrfToken() };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/v1${path}`, init);
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.status === 401) location.assign("/login"); // the session ended (signed out)
  if (!response.ok) {
    const message = (data && (data.detail || data.title)) || `HTTP ${response.status}`;
    throw new ApiError(response.status, message, data && data.code);
  }
  return data;
}

/** Show a failure next to the control that caused it (and in the page's alert line). */
export function showError(target, error) {
  const text = error instanceof Error ? error.message : String(error);
  const box = target || document.getElementById("toast");
  if (!box) return;
  box.textContent = text;
  box.hidden = false;
}

export function clearError(target) {
  if (target) {
    target.textContent = "";
    target.hidden = true;
  }
}

export function pageData() {
  const block = document.getElementById("page-data");
  return block ? JSON.parse(block.textContent) : {};
}

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) node.append(child);
  return node;
}

const COLOR = /^#[0-9a-fA-F]{6}$/;

/** Label chips get their colour from data-color (CSP allows no inline style attribute). */
export function paintLabels(root = document) {
  for (const chip of root.querySelectorAll(".label[data-color]")) {
    if (COLOR.test(chip.dataset.color)) chip.style.setProperty("--label", chip.dataset.color);
  }
}

export function labelChip(label) {
  const chip = el("li", { class: "label", "data-color": label.color, text: label.name });
  if (COLOR.test(label.color)) chip.style.setProperty("--label", label.color);
  return chip;
}

function span(seconds) {
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
    if (seconds >= size) return `${Math.floor(seconds / size)} ${unit}`;
  }
  return `${seconds} s`;
}

/** Keep `time[data-age]` ("12 s ago") and `time[data-countdown]` ("in 4 s") current. */
export function tickTimes() {
  const now = Date.now();
  for (const time of document.querySelectorAll("time[data-age]")) {
    const at = Date.parse(time.getAttribute("datetime") || "");
    time.textContent = Number.isNaN(at) ? "never" : `${span(Math.max(0, Math.round((now - at) / 1000)))} ago`;
  }
  for (const time of document.querySelectorAll("time[data-countdown]")) {
    const at = Date.parse(time.getAttribute("datetime") || "");
    if (Number.isNaN(at)) continue;
    const left = Math.round((at - now) / 1000);
    time.textContent = left >= 0 ? `expires in ${span(left)}` : `expired ${span(-left)} ago`;
    time.classList.toggle("expired", left < 0);
  }
}

/** Apply a node_status message to every row or badge of that node on the page. */
export function applyNodeStatus(message, names) {
  if (message.name) names[message.node_id] = message.name;
  let known = false;
  for (const row of document.querySelectorAll("[data-node-id]")) {
    if (row.dataset.nodeId !== message.node_id) continue;
    known = true;
    const badge = row.querySelector("[data-node-status]");
    if (badge) {
      badge.textContent = message.status;
      badge.className = `badge status-${message.status}`;
    }
    const beat = row.querySelector("time[data-age]");
    if (beat && message.last_heartbeat_at) beat.setAttribute("datetime", message.last_heartbeat_at);
    const name = row.querySelector(".node-name");
    if (name && message.name) name.textContent = message.name;
  }
  return known;
}

/** Re-read this page and swap in the current content of the elements matched by `selectors`
 * (the parts the stream has no message for, such as what each node runs now). */
export async function reloadParts(selectors) {
  let fresh;
  try {
    const response = await fetch(location.pathname + location.search, { credentials: "same-origin" });
    if (!response.ok) return;
    fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  } catch {
    return;
  }
  for (const selector of selectors) {
    const now = fresh.querySelector(selector);
    const shown = document.querySelector(selector);
    if (now && shown) shown.replaceChildren(...[...now.childNodes].map((n) => document.importNode(n, true)));
  }
  paintLabels();
  tickTimes();
}
