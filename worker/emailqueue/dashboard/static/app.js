// The page: routing (#/, #/q/NAME, #/q/NAME/dead/ID, #/q/NAME/msg/ID), login, live refresh.

import { ApiError, get, loadSession, post, session } from "./api.js";
import { duration, h, num, rate, renderIfChanged, replace, table } from "./dom.js";
import { detailView } from "./detail.js";
import { queueView } from "./queue.js";

const REFRESH_MS = 2000;
const main = document.getElementById("main");
let view = null; // {route, refresh()}
let timer = null;

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "q" && parts[1]) {
    if ((parts[2] === "dead" || parts[2] === "msg") && parts[3]) return { name: parts[2], queue: parts[1], id: parts[3] };
    return { name: "queue", queue: parts[1] };
  }
  return { name: "overview" };
}

function header() {
  replace(document.getElementById("redis"), session.redis ? `Redis ${session.redis}` : "");
  const mode = document.getElementById("mode");
  let text = "";
  if (session.read_only) text = "read-only";
  else if (!session.auth_required) text = "view-only: no login configured";
  replace(mode, text);
  mode.hidden = !text;
  replace(document.getElementById("who"), session.authenticated && session.user ? `signed in as ${session.user}` : "");
  document.getElementById("logout").hidden = !(session.auth_required && session.authenticated);
}

function loginView() {
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const fields = [];
  if (session.login.token) {
    fields.push(h("label", {}, "Token", h("input", { name: "token", type: "password", autocomplete: "off", "data-testid": "login-token" })));
  }
  if (session.login.password) {
    if (session.login.token) fields.push(h("p", { class: "muted" }, "or"));
    fields.push(h("label", {}, "User", h("input", { name: "user", autocomplete: "username", "data-testid": "login-user" })));
    fields.push(
      h("label", {}, "Password", h("input", { name: "password", type: "password", autocomplete: "current-password", "data-testid": "login-password" })),
    );
  }
  const form = h(
    "form",
    {
      class: "login",
      onsubmit: async (event) => {
        event.preventDefault();
        const data = Object.fromEntries(new FormData(form).entries());
        try {
          await post("/api/login", data);
          await loadSession();
          start();
        } catch (err) {
          replace(error, err.message);
          error.hidden = false;
        }
      },
    },
    h("h1", {}, "Log in"),
    fields,
    error,
    h("button", { type: "submit", class: "primary", "data-testid": "login-submit" }, "Log in"),
  );
  replace(main, form);
}

function overviewView() {
  const body = h("div", { "data-testid": "overview-table" });
  replace(main, h("h1", {}, "Queues"), body);
  return {
    async refresh() {
      const data = await get("/api/overview");
      renderIfChanged(body, data.queues, (queues) =>
        table(
          [
            { key: "queue", label: "queue", cell: (q) => h("a", { href: `#/q/${encodeURIComponent(q.queue)}` }, q.queue) },
            { key: "state", label: "state", cell: (q) => h("span", { class: `state ${q.paused ? "paused" : "running"}` }, q.paused ? "paused" : "running") },
            { key: "waiting", label: "waiting", num: true, cell: (q) => num(q.waiting) },
            { key: "in_flight", label: "in flight", num: true, cell: (q) => num(q.in_flight) },
            { key: "delayed", label: "delayed", num: true, cell: (q) => num(q.delayed) },
            { key: "failed", label: "failed", num: true, cell: (q) => num(q.failed) },
            { key: "consumers", label: "consumers", num: true, cell: (q) => num(q.consumer_count) },
            { key: "oldest", label: "oldest waiting", num: true, cell: (q) => duration(q.oldest_age_ms) },
            { key: "sent_per_s", label: "sent/s", num: true, cell: (q) => rate(q.sent_per_s) },
            { key: "sent", label: "sent (total)", num: true, cell: (q) => num(q.counters.sent) },
          ],
          queues,
          { rowAttrs: (q) => ({ dataset: { queue: q.queue } }), empty: "No queue found in this Redis yet (keys emailqueue:{*}:stream)." },
        ),
      );
    },
  };
}

function live(ok) {
  replace(document.getElementById("live"), ok ? `live · ${new Date().toLocaleTimeString("en-GB", { hour12: false })}` : "not updating");
}

function notice(message) {
  const el = document.getElementById("notice");
  replace(el, message || "");
  el.hidden = !message;
}

async function tick() {
  if (!view) return;
  try {
    await view.refresh();
    live(true);
    notice("");
  } catch (err) {
    live(false);
    if (err instanceof ApiError && err.status === 401) {
      await loadSession();
      start();
      return;
    }
    notice(err.message);
  }
}

function start() {
  clearInterval(timer);
  header();
  if (session.auth_required && !session.authenticated) {
    view = null;
    loginView();
    return;
  }
  const r = route();
  if (r.name === "queue") view = queueView(main, r.queue);
  else if (r.name === "dead" || r.name === "msg") view = detailView(main, r.queue, r.name, r.id);
  else view = overviewView();
  tick();
  if (!view.static) timer = setInterval(tick, REFRESH_MS);
}

document.getElementById("logout").addEventListener("click", async () => {
  try {
    await post("/api/logout", {});
  } finally {
    await loadSession();
    start();
  }
});
window.addEventListener("hashchange", start);
window.addEventListener("emailqueue:session", async () => {
  await loadSession();
  start();
});

loadSession()
  .then(start)
  .catch((err) => {
    replace(main, h("p", { class: "error" }, `Cannot reach the dashboard API: ${err.message}`));
  });
