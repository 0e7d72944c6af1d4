// One queue: figures, pause/resume, charts, consumers and what they hold, dead letters, messages.

import { get, post, queuePath, session } from "./api.js";
import { lineChart } from "./charts.js";
import { clock, duration, h, num, renderIfChanged, replace, table, toast } from "./dom.js";

const TILES = [
  ["waiting", "waiting", "in the stream, not yet read by a worker"],
  ["in_flight", "in flight", "read by a worker, not yet settled"],
  ["delayed", "delayed", "retries and scheduled sends not yet due"],
  ["failed", "failed", "dead letters"],
  ["consumer_count", "consumers", "workers in the consumer group"],
  ["sent", "sent", "delivered since the queue was created"],
];

function short(id) {
  return id && id.length > 14 ? `${id.slice(0, 12)}…` : id;
}

function when(iso) {
  return iso ? iso.replace("T", " ").slice(0, 19) : "–";
}

export async function act(what, path, body, confirmText) {
  if (confirmText && !window.confirm(confirmText)) return null;
  try {
    const result = await post(path, body);
    toast(what(result));
    return result;
  } catch (err) {
    toast(err.message, "error");
    return null;
  }
}

function tiles(detail) {
  return h(
    "div",
    { class: "tiles" },
    TILES.map(([key, label, help]) =>
      h(
        "div",
        { class: `tile ${key === "failed" && detail.failed ? "bad" : ""}`, "data-testid": `tile-${key}`, title: help },
        h("span", { class: "value" }, num(key === "sent" ? detail.counters.sent : detail[key])),
        h("span", { class: "label" }, label),
      ),
    ),
    h(
      "div",
      { class: "tile", "data-testid": "tile-oldest", title: "age of the oldest entry in the stream" },
      h("span", { class: "value" }, duration(detail.oldest_age_ms)),
      h("span", { class: "label" }, "oldest waiting"),
    ),
  );
}

function controls(queue, detail, reload) {
  const state = h("span", { class: `state ${detail.paused ? "paused" : "running"}`, "data-testid": "queue-state" }, detail.paused ? "paused" : "running");
  if (!session.can_act) return h("div", { class: "controls" }, state);
  const button = detail.paused
    ? h("button", { type: "button", "data-testid": "resume", onclick: async () => (await act(() => `Queue ${queue} resumed`, queuePath(queue, "resume"), {})) && reload() }, "Resume")
    : h(
        "button",
        {
          type: "button",
          "data-testid": "pause",
          onclick: async () =>
            (await act(() => `Queue ${queue} paused: workers finish what they hold and take nothing new`, queuePath(queue, "pause"), {},
              `Pause queue ${queue}? Workers finish what they hold and take nothing new until you resume.`)) && reload(),
        },
        "Pause",
      );
  return h("div", { class: "controls" }, state, button);
}

function charts(points, sampleS) {
  const waitText = `collecting samples (one every ${sampleS} s)…`;
  return h(
    "div",
    { class: "charts" },
    lineChart({
      title: "Throughput",
      unit: "/s",
      testid: "chart-throughput",
      points,
      emptyText: waitText,
      series: [
        { name: "sent", key: "sent_per_s", cls: "s1" },
        { name: "enqueued", key: "enqueued_per_s", cls: "s2" },
        { name: "retried", key: "retried_per_s", cls: "s3" },
        { name: "failed", key: "failed_per_s", cls: "s4" },
      ],
    }),
    lineChart({
      title: "Send latency (mean per interval)",
      unit: "ms",
      testid: "chart-latency",
      points,
      emptyText: points.length < 2 ? waitText : "no sends in this period, or workers that do not record send time",
      series: [{ name: "SMTP send", key: "latency_ms", cls: "s1" }],
    }),
    lineChart({
      title: "Backlog",
      unit: "",
      testid: "chart-backlog",
      points,
      emptyText: waitText,
      series: [
        { name: "waiting", key: "waiting", cls: "s2" },
        { name: "in flight", key: "in_flight", cls: "s1" },
        { name: "delayed", key: "delayed", cls: "s3" },
        { name: "failed", key: "failed_total", cls: "s4" },
      ],
    }),
  );
}

function consumersTable(detail) {
  return table(
    [
      { key: "name", label: "consumer", cell: (c) => c.name },
      { key: "pending", label: "holds", num: true, cell: (c) => num(c.pending) },
      { key: "idle", label: "idle", num: true, cell: (c) => duration(c.idle_ms) },
    ],
    detail.consumers,
    { testid: "consumers", rowAttrs: (c) => ({ dataset: { consumer: c.name } }), empty: "No consumer: no worker has joined the group yet." },
  );
}

function pendingTable(queue, detail) {
  return table(
    [
      { key: "entry", label: "entry", cell: (p) => h("a", { href: `#/q/${encodeURIComponent(queue)}/msg/${encodeURIComponent(p.entry_id)}` }, p.entry_id) },
      { key: "consumer", label: "held by", cell: (p) => p.consumer },
      { key: "lane", label: "lane", cell: (p) => p.lane },
      { key: "idle", label: "for", num: true, cell: (p) => duration(p.idle_ms) },
      { key: "deliveries", label: "deliveries", num: true, cell: (p) => num(p.deliveries) },
    ],
    detail.pending,
    { testid: "pending", empty: "Nothing in flight." },
  );
}

function letterButtons(queue, letter, reload) {
  if (!session.can_act) return null;
  const ids = [letter.failed_id];
  return h(
    "span",
    { class: "row-actions" },
    h("button", { type: "button", "data-testid": "retry-one", onclick: async () => (await act((r) => `${r.retried} moved back to the queue`, queuePath(queue, "dead-letters", "retry"), { ids })) && reload() }, "Retry"),
    h(
      "button",
      {
        type: "button",
        class: "danger",
        "data-testid": "remove-one",
        onclick: async () => (await act((r) => `${r.removed} removed`, queuePath(queue, "dead-letters", "remove"), { ids }, `Remove dead letter ${letter.message_id} for good?`)) && reload(),
      },
      "Remove",
    ),
  );
}

function lettersSection(queue, data, reload) {
  const head = [h("h2", {}, `Dead letters (${num(data.total)})`)];
  if (session.can_act && data.total) {
    head.push(
      h(
        "span",
        { class: "row-actions" },
        h("button", { type: "button", "data-testid": "retry-all", onclick: async () => (await act((r) => `${r.retried} moved back to the queue`, queuePath(queue, "dead-letters", "retry"), { all: true }, `Move all ${data.total} dead letters back to the queue?`)) && reload() }, "Retry all"),
        h("button", { type: "button", class: "danger", "data-testid": "remove-all", onclick: async () => (await act((r) => `${r.removed} removed`, queuePath(queue, "dead-letters", "remove"), { all: true }, `Remove all ${data.total} dead letters for good?`)) && reload() }, "Remove all"),
      ),
    );
  }
  return [
    h("div", { class: "section-head" }, head),
    table(
      [
        { key: "message", label: "message", cell: (d) => h("a", { href: `#/q/${encodeURIComponent(queue)}/dead/${encodeURIComponent(d.failed_id)}`, title: d.message_id, class: "id" }, short(d.message_id)) },
        { key: "to", label: "to", cell: (d) => d.to.join(", ") },
        { key: "subject", label: "subject", cell: (d) => d.subject ?? "" },
        { key: "reason", label: "reason", cell: (d) => h("span", { class: `reason ${d.reason}` }, d.reason) },
        { key: "smtp", label: "SMTP", cell: (d) => d.smtp_code || "–" },
        { key: "attempts", label: "attempts", num: true, cell: (d) => d.attempts },
        { key: "error", label: "last error", cell: (d) => h("span", { class: "error-text" }, d.error) },
        { key: "failed_at", label: "failed at", cell: (d) => h("span", { class: "nowrap" }, when(d.failed_at)) },
        { key: "actions", label: "", cell: (d) => letterButtons(queue, d, reload) },
      ],
      data.letters,
      { testid: "dead-letters", rowAttrs: (d) => ({ dataset: { failedId: d.failed_id, messageId: d.message_id } }), empty: "No dead letters." },
    ),
  ];
}

function messagesSection(queue, data) {
  return [
    h("h2", {}, "Messages in the streams (first 100 of each lane)"),
    table(
      [
        { key: "entry", label: "entry", cell: (m) => h("a", { href: `#/q/${encodeURIComponent(queue)}/msg/${encodeURIComponent(m.entry_id)}` }, m.entry_id) },
        { key: "state", label: "state", cell: (m) => (m.consumer ? `${m.state} (${m.consumer})` : m.state) },
        { key: "lane", label: "lane", cell: (m) => m.lane },
        { key: "to", label: "to", cell: (m) => m.to.join(", ") },
        { key: "subject", label: "subject", cell: (m) => m.subject ?? m.error ?? "" },
        { key: "attempts", label: "attempts", num: true, cell: (m) => m.attempts },
        { key: "age", label: "age", num: true, cell: (m) => duration(m.age_ms) },
      ],
      data.stream,
      { testid: "messages", rowAttrs: (m) => ({ dataset: { entryId: m.entry_id, messageId: m.message_id } }), empty: "The stream is empty." },
    ),
    h("h2", {}, "Delayed (retries and scheduled sends, first 100)"),
    table(
      [
        { key: "message", label: "message", cell: (m) => h("span", { title: m.message_id, class: "id" }, short(m.message_id)) },
        { key: "to", label: "to", cell: (m) => m.to.join(", ") },
        { key: "subject", label: "subject", cell: (m) => m.subject ?? m.error ?? "" },
        { key: "attempts", label: "attempts", num: true, cell: (m) => m.attempts },
        { key: "due", label: "due", cell: (m) => clock(m.due_ms) },
        { key: "error", label: "last error", cell: (m) => h("span", { class: "error-text" }, m.last_error) },
      ],
      data.delayed,
      { testid: "delayed", empty: "Nothing delayed." },
    ),
  ];
}

export function queueView(main, queue) {
  const parts = {
    tiles: h("div"),
    controls: h("div"),
    charts: h("div"),
    consumers: h("div"),
    pending: h("div"),
    letters: h("div"),
    messages: h("div"),
  };
  replace(
    main,
    h("div", { class: "crumbs" }, h("a", { href: "#/" }, "Queues"), " / ", h("strong", { "data-testid": "queue-name" }, queue)),
    h("div", { class: "section-head" }, h("h1", {}, `Queue ${queue}`), parts.controls),
    parts.tiles,
    parts.charts,
    h("div", { class: "columns" }, h("section", {}, h("h2", {}, "Consumers"), parts.consumers), h("section", {}, h("h2", {}, "In flight: what each consumer holds"), parts.pending)),
    h("section", {}, parts.letters),
    h("section", {}, parts.messages),
  );
  const self = {
    async refresh() {
      const [detail, history, letters, messages] = await Promise.all([
        get(queuePath(queue)),
        get(queuePath(queue, "history")),
        get(queuePath(queue, "dead-letters")),
        get(queuePath(queue, "messages")),
      ]);
      renderIfChanged(parts.tiles, detail, tiles);
      renderIfChanged(parts.controls, { paused: detail.paused, can: session.can_act }, () => controls(queue, detail, self.refresh));
      renderIfChanged(parts.charts, history, (d) => charts(d.points, d.sample_s));
      renderIfChanged(parts.consumers, detail.consumers, () => consumersTable(detail));
      renderIfChanged(parts.pending, detail.pending, () => pendingTable(queue, detail));
      renderIfChanged(parts.letters, { letters, can: session.can_act }, () => lettersSection(queue, letters, self.refresh));
      renderIfChanged(parts.messages, messages, (d) => messagesSection(queue, d));
    },
  };
  return self;
}
