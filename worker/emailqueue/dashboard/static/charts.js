// Line charts as inline SVG: no library, no build step.

import { h } from "./dom.js";

const W = 640;
const H = 200;
const PAD = { left: 48, right: 12, top: 10, bottom: 24 };

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function label(value) {
  if (value >= 1000) return `${(value / 1000).toFixed(value >= 10000 ? 0 : 1)}k`;
  return Number.isInteger(value) ? String(value) : value.toFixed(value < 1 ? 2 : 1);
}

function hhmm(t) {
  const d = new Date(t * 1000);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

// series: [{name, key, cls}], points: [{t, <key>: number|null}]
export function lineChart({ title, unit, series, points, testid, emptyText }) {
  const figure = h("figure", { class: "chart", "data-testid": testid });
  const latest = points.length ? points[points.length - 1] : null;
  figure.appendChild(
    h(
      "figcaption",
      {},
      h("strong", {}, title),
      series.map((s) =>
        h(
          "span",
          { class: `legend ${s.cls}`, dataset: { series: s.key } },
          `${s.name} `,
          h("b", {}, latest && latest[s.key] !== null && latest[s.key] !== undefined ? `${label(latest[s.key])}` : "–"),
          unit ? ` ${unit}` : "",
        ),
      ),
    ),
  );
  const values = points.flatMap((p) => series.map((s) => p[s.key])).filter((v) => v !== null && v !== undefined);
  const svg = h("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, preserveAspectRatio: "none" });
  figure.appendChild(svg);
  if (points.length < 2 || !values.length) {
    svg.appendChild(h("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty" }, emptyText));
    return figure;
  }
  const t0 = points[0].t;
  const t1 = points[points.length - 1].t;
  const ymax = niceMax(Math.max(...values));
  const x = (t) => PAD.left + ((t - t0) / Math.max(t1 - t0, 1)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / ymax) * (H - PAD.top - PAD.bottom);
  const grid = h("g", { class: "grid-lines" });
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const v = ymax * f;
    grid.appendChild(h("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
    grid.appendChild(h("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, label(v)));
  }
  for (const f of [0, 0.5, 1]) {
    const t = t0 + (t1 - t0) * f;
    const anchor = f === 0 ? "start" : f === 1 ? "end" : "middle";
    grid.appendChild(h("text", { x: x(t), y: H - 6, "text-anchor": anchor }, hhmm(t)));
  }
  svg.appendChild(grid);
  for (const s of series) {
    let d = "";
    let pen = false;
    for (const p of points) {
      const v = p[s.key];
      if (v === null || v === undefined) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${x(p.t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    if (d) svg.appendChild(h("path", { d, class: `line ${s.cls}`, dataset: { series: s.key } }, h("title", {}, s.name)));
  }
  return figure;
}
