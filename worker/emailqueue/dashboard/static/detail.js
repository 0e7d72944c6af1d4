// One message: a dead letter's record or a stream entry, with its decoded payload.

import { get, queuePath, session } from "./api.js";
import { duration, h, num, replace } from "./dom.js";
import { act } from "./queue.js";

function pairs(obj, testid) {
  const rows = Object.entries(obj || {});
  return h(
    "dl",
    { class: "pairs", "data-testid": testid },
    rows.length ? rows.map(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { field: k } }, v === null || v === undefined || v === "" ? "–" : String(v))]) : h("dd", {}, "none"),
  );
}

function emailView(payload) {
  if (!payload.decoded) {
    return h(
      "section",
      { "data-testid": "payload" },
      h("h2", {}, "Payload"),
      h("p", { class: "error", "data-testid": "payload-error" }, payload.error),
      payload.raw ? h("pre", { class: "body" }, payload.raw) : null,
    );
  }
  const e = payload.email;
  const list = (items) => (items && items.length ? items.join(", ") : null);
  return h(
    "section",
    { "data-testid": "payload" },
    h("h2", {}, "Email"),
    pairs(
      {
        id: e.id,
        from: e.from || "(the worker's MAILER_FROM_EMAIL)",
        to: list(e.to),
        cc: list(e.cc),
        bcc: list(e.bcc),
        "reply-to": list(e.reply_to),
        subject: e.subject,
        priority: e.priority,
        created_at: e.created_at,
        send_at: e.send_at,
        idempotency_key: e.idempotency_key,
        attempts: e.attempts,
      },
      "email-fields",
    ),
    Object.keys(e.headers).length ? [h("h3", {}, "Headers"), pairs(e.headers, "headers")] : null,
    Object.keys(e.metadata).length ? [h("h3", {}, "Metadata"), pairs(e.metadata, "metadata")] : null,
    e.attachments.length
      ? [
          h("h3", {}, "Attachments"),
          h("ul", {}, e.attachments.map((a) => h("li", {}, `${a.filename} (${a.content_type}, ${a.size === null ? "?" : num(a.size)} bytes)`))),
        ]
      : null,
    e.text !== null ? [h("h3", {}, "Text"), h("pre", { class: "body", "data-testid": "text-body" }, e.text)] : null,
    e.html !== null ? [h("h3", {}, "HTML (source, not rendered)"), h("pre", { class: "body", "data-testid": "html-body" }, e.html)] : null,
  );
}

export function detailView(main, queue, kind, id) {
  const back = `#/q/${encodeURIComponent(queue)}`;
  const crumbs = h(
    "div",
    { class: "crumbs" },
    h("a", { href: "#/" }, "Queues"),
    " / ",
    h("a", { href: back }, queue),
    " / ",
    kind === "dead" ? "dead letter " : "message ",
    h("strong", {}, id),
  );
  const body = h("div");
  replace(main, crumbs, body);
  return {
    static: true,
    async refresh() {
      if (kind === "dead") {
        const letter = await get(queuePath(queue, "dead-letters", id));
        const ids = [id];
        const done = () => (location.hash = back);
        const buttons = session.can_act
          ? h(
              "div",
              { class: "row-actions" },
              h("button", { type: "button", "data-testid": "retry-one", onclick: async () => (await act((r) => `${r.retried} moved back to the queue`, queuePath(queue, "dead-letters", "retry"), { ids })) && done() }, "Retry"),
              h("button", { type: "button", class: "danger", "data-testid": "remove-one", onclick: async () => (await act((r) => `${r.removed} removed`, queuePath(queue, "dead-letters", "remove"), { ids }, "Remove this dead letter for good?")) && done() }, "Remove"),
            )
          : null;
        replace(
          body,
          h("div", { class: "section-head" }, h("h1", {}, `Dead letter: ${letter.fields.reason || "?"}`), buttons),
          h("section", {}, h("h2", {}, "Why it failed"), pairs(letter.fields, "letter-fields")),
          emailView(letter.payload),
        );
      } else {
        const m = await get(queuePath(queue, "messages", id));
        const holder = m.holder ? `held by ${m.holder.consumer} for ${duration(m.holder.idle_ms)}, delivered ${m.holder.deliveries} time(s)` : "waiting for a worker";
        replace(
          body,
          h("h1", {}, `Message ${m.state}`),
          h("p", { "data-testid": "message-state" }, `${holder}; in the ${m.lane} lane for ${duration(m.age_ms)}`),
          h("section", {}, h("h2", {}, "Stream fields"), pairs(m.fields, "entry-fields")),
          emailView(m.payload),
        );
      }
    },
  };
}
