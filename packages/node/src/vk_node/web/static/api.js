// The board's one client of the node's REST API: same origin, JSON bodies, the API's own errors.
//
// When the node has an API token (VK_NODE_API_TOKEN), the user types it once into the token form;
// it is kept in this tab's sessionStorage and sent as `Authorization: Bearer` with every /api
// call. Two more copies exist because a browser cannot set that header everywhere:
// - a page navigation: the `vk_node_token` cookie (SameSite=Strict; opens pages only, never /api);
// - the log WebSocket: the subprotocol `vk-token.<token in base64url>` next to `vk-logs`.

const TOKEN_KEY = "vk-node-token";
const FLASH_KEY = "vk-node-flash";

export class ApiError extends Error {
  constructor(status, detail, code) {
    super(detail);
    this.status = status;
    this.code = code || "";
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

/** A new tab has the page cookie but an empty sessionStorage: take the token from the cookie. */
export function restoreToken() {
  if (token()) return;
  const found = document.cookie.split("; ").find((item) => item.startsWith("vk_node_token="));
  if (!found) return;
  try {
    const text = found.slice("vk_node_token=".length).replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(text + "===".slice((text.length + 3) % 4));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    sessionStorage.setItem(TOKEN_KEY, new TextDecoder().decode(bytes));
  } catch {
    // not a token this board wrote: the form asks for it on the first 401
  }
}

/** UTF-8 bytes of `text` in unpadded base64url (an HTTP token: fit for a subprotocol or cookie). */
export function base64url(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function saveToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
  const secure = location.protocol === "https:" ? "; secure" : "";
  document.cookie = `vk_node_token=${base64url(value)}; path=/; samesite=strict${secure}`;
}

export function showTokenForm() {
  const form = document.getElementById("token-form");
  if (form) {
    form.hidden = false;
    form.querySelector("input")?.focus();
  }
}

/** Show a message at the top of the page (`kind`: "error" or "ok"). */
export function flash(message, kind = "error") {
  const box = document.getElementById("flash");
  if (!box) return;
  box.textContent = message;
  box.className = `flash flash-${kind}`;
  box.hidden = false;
}

/** Show `message` after the next page load (for actions that reload the page). */
export function flashAfterReload(message, kind = "ok") {
  sessionStorage.setItem(FLASH_KEY, JSON.stringify({ message, kind }));
}

export function showPendingFlash() {
  const pending = sessionStorage.getItem(FLASH_KEY);
  if (!pending) return;
  sessionStorage.removeItem(FLASH_KEY);
  try {
    const { message, kind } = JSON.parse(pending);
    flash(String(message), kind === "ok" ? "ok" : "error");
  } catch {
    // a malformed entry is dropped
  }
}

/** Call `/api${path}`; the decoded JSON answer, or an ApiError carrying the API's detail. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const secret = token();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api${path}`, init);
  } catch {
    throw new ApiError(0, "The node did not answer (is vk-node serve running?)");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    if (response.status === 401) showTokenForm();
    const detail = data && typeof data.detail === "string" ? data.detail : `HTTP ${response.status}`;
    throw new ApiError(response.status, detail, data && data.code);
  }
  return data;
}

/** The log WebSocket of a process (history, then live lines, then a "finished" frame). */
export function logSocket(processId) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}/api/execution-processes/${processId}/logs/ws`;
  const secret = token();
  const protocols = secret ? ["vk-logs", `vk-token.${base64url(secret)}`] : ["vk-logs"];
  return new WebSocket(url, protocols);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
