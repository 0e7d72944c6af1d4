// Talking to the dashboard's JSON API. Changes carry the session's CSRF token in a header.

export const session = { loaded: false };

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    if (session.csrf) headers["X-CSRF-Token"] = session.csrf;
    init.body = JSON.stringify(body || {});
  }
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, (data && data.error) || `HTTP ${response.status}`);
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);

export async function loadSession() {
  Object.assign(session, await get("/api/session"), { loaded: true });
  return session;
}

export function queuePath(queue, ...rest) {
  return ["/api/queues", encodeURIComponent(queue), ...rest.map(encodeURIComponent)].join("/");
}
