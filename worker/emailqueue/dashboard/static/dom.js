// Building the page without innerHTML: every value from Redis goes in as text.

export function h(tag, attrs = {}, ...children) {
  const svg = ["svg", "path", "line", "text", "g", "rect", "circle", "polyline", "title"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.setAttribute("class", value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  while (el.firstChild) el.removeChild(el.firstChild);
  append(el, children);
  return el;
}

const NUMBER = new Intl.NumberFormat("en-US");

export function num(value) {
  return value === null || value === undefined ? "–" : NUMBER.format(value);
}

export function rate(value) {
  if (value === null || value === undefined) return "–";
  return value >= 100 ? NUMBER.format(Math.round(value)) : value.toFixed(value >= 10 ? 1 : 2);
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  const s = ms / 1000;
  if (s < 1) return `${Math.round(ms)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
}

export function clock(epochMs) {
  if (!epochMs) return "–";
  return new Date(epochMs).toLocaleString("en-GB", { hour12: false });
}

// Re-render a region only when its data changed, so that rows under the pointer stay put.
const last = new WeakMap();
export function renderIfChanged(el, data, render) {
  const key = JSON.stringify(data);
  if (last.get(el) === key) return;
  last.set(el, key);
  replace(el, render(data));
}

export function table(columns, rows, options = {}) {
  const head = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null }, c.label))));
  const body = h(
    "tbody",
    {},
    rows.length
      ? rows.map((row) =>
          h(
            "tr",
            options.rowAttrs ? options.rowAttrs(row) : {},
            columns.map((c) => h("td", { class: c.num ? "num" : null, dataset: { col: c.key } }, c.cell(row))),
          ),
        )
      : h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, options.empty || "none")),
  );
  return h("table", { class: options.class || "grid", "data-testid": options.testid || null }, head, body);
}

export function toast(message, kind = "ok") {
  const el = document.getElementById("toast");
  replace(el, message);
  el.className = `toast ${kind}`;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.hidden = true), 4000);
}
