// The verdict drawn: win rates and strengths as bars with their 95% intervals, the mean score
// of each value of a swept axis as a line over the axis. Inline SVG, built node by node (no
// markup from data), shared by report.html and the review page.
"use strict";
const SVG_NS = "http://www.w3.org/2000/svg";

function svgNode(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function percent(x) { return Math.round(x * 100) + "%"; }

// Rows of [label, value, [low, high], note] on a 0..1 scale, with a line at `middle`; the
// ticks are named by `tickLabel`.
function intervalBars(rows, middle, role, tickLabel = percent) {
  const width = 640, left = 190, right = 130, rowHeight = 30, top = 22;
  const plot = width - left - right;
  const height = top + rows.length * rowHeight + 8;
  const chart = svgNode("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "data-chart": role });
  const x = (v) => left + Math.max(0, Math.min(1, v)) * plot;
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(svgNode("line", { x1: x(tick), x2: x(tick), y1: top - 6, y2: height - 6, stroke: tick === middle ? "#888" : "#e4e2dc",
      "stroke-dasharray": tick === middle ? "4 3" : "" }));
    chart.append(svgNode("text", { x: x(tick), y: 12, "text-anchor": "middle", "font-size": 11, fill: "#6b6b70" }, tickLabel(tick)));
  }
  rows.forEach(([label, value, interval, note], i) => {
    const y = top + i * rowHeight + rowHeight / 2;
    chart.append(svgNode("text", { x: left - 8, y: y + 4, "text-anchor": "end", "font-size": 12 }, label));
    if (value == null) {
      chart.append(svgNode("text", { x: left, y: y + 4, "font-size": 12, fill: "#6b6b70" }, note));
      return;
    }
    chart.append(svgNode("rect", { x: left, y: y - 7, width: Math.max(1, x(value) - left), height: 14, fill: "#c9d6f5", rx: 3 }));
    chart.append(svgNode("line", { x1: x(interval[0]), x2: x(interval[1]), y1: y, y2: y, stroke: "#1d1d1f", "stroke-width": 2 }));
    for (const end of interval) chart.append(svgNode("line", { x1: x(end), x2: x(end), y1: y - 6, y2: y + 6, stroke: "#1d1d1f", "stroke-width": 2 }));
    chart.append(svgNode("circle", { cx: x(value), cy: y, r: 4, fill: "#2458d3" }));
    chart.append(svgNode("text", { x: width - right + 8, y: y + 4, "font-size": 12 }, note));
  });
  return chart;
}

// The mean score (1..5) of each value of one axis, with its interval, joined by a line.
function axisLine(name, means) {
  const width = 640, height = 220, left = 44, right = 20, top = 16, bottom = 46;
  const chart = svgNode("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "data-chart": "axis", "data-axis": name });
  const numeric = means.every((m) => typeof m.value === "number");
  const values = means.map((m) => m.value);
  const lo = numeric ? Math.min(...values) : 0, hi = numeric ? Math.max(...values) : means.length - 1;
  const x = (m, i) => left + (hi === lo ? 0.5 : ((numeric ? m.value : i) - lo) / (hi - lo)) * (width - left - right);
  const y = (score) => top + (5 - Math.max(1, Math.min(5, score))) / 4 * (height - top - bottom);
  for (let s = 1; s <= 5; s++) {
    chart.append(svgNode("line", { x1: left, x2: width - right, y1: y(s), y2: y(s), stroke: "#e4e2dc" }));
    chart.append(svgNode("text", { x: left - 8, y: y(s) + 4, "text-anchor": "end", "font-size": 11, fill: "#6b6b70" }, String(s)));
  }
  const points = means.map((m, i) => `${x(m, i)},${y(m.mean)}`).join(" ");
  chart.append(svgNode("polyline", { points, fill: "none", stroke: "#2458d3", "stroke-width": 2 }));
  means.forEach((m, i) => {
    if (m.ci95) chart.append(svgNode("line", { x1: x(m, i), x2: x(m, i), y1: y(m.ci95[0]), y2: y(m.ci95[1]), stroke: "#1d1d1f", "stroke-width": 2 }));
    chart.append(svgNode("circle", { cx: x(m, i), cy: y(m.mean), r: 4, fill: "#2458d3", "data-mean": m.mean }));
    chart.append(svgNode("text", { x: x(m, i), y: height - bottom + 18, "text-anchor": "middle", "font-size": 11 }, String(m.value)));
    chart.append(svgNode("text", { x: x(m, i), y: height - bottom + 32, "text-anchor": "middle", "font-size": 10, fill: "#6b6b70" }, "n " + m.n));
  });
  chart.append(svgNode("text", { x: width / 2, y: height - 4, "text-anchor": "middle", "font-size": 12, "font-weight": 600 }, name));
  return chart;
}

// Everything a verdict says, into `container`: its words, then its pictures.
function drawVerdict(container, verdict, words) {
  const add = (tag, text) => { const node = document.createElement(tag); node.textContent = text; container.append(node); return node; };
  container.replaceChildren();
  if (!verdict || !verdict.judgments) {
    add("p", "No judgments yet: vote on pairs or score images in the review page (flux-batch review RUN_DIR).");
    return;
  }
  if (words && words.length) {
    const list = document.createElement("ul");
    list.className = "verdict-words";
    for (const line of words) { const item = document.createElement("li"); item.textContent = line; list.append(item); }
    container.append(list);
  }
  if (verdict.pairs.length) {
    add("h3", "Win rate of the first arm, decided votes (95% interval; 50% is a coin toss)");
    container.append(intervalBars(verdict.pairs.map((p) => [p.a + " vs " + p.b, p.win_rate, p.ci95,
      p.win_rate == null ? "no decided votes" : `${p.wins}-${p.losses}` + (p.ties ? `, ${p.ties} ties` : "") + `, p ${p.p_value < 0.001 ? "< 0.001" : p.p_value.toFixed(3)}`]), 0.5, "pairs"));
  }
  if (verdict.ranking.length) {
    add("h3", "Ranking: the chance to beat an average arm (Bradley-Terry, 95% interval)");
    container.append(intervalBars(verdict.ranking.map((r) => [r.arm, r.strength, r.ci95, r.strength.toFixed(2)]), 0.5, "ranking"));
  }
  if (verdict.arm_scores.length > 1) {
    add("h3", "Mean score by arm (1-5, 95% interval)");
    const scale = (s) => (s - 1) / 4;
    container.append(intervalBars(verdict.arm_scores.map((m) => [m.arm, scale(m.mean), m.ci95 ? m.ci95.map(scale) : [scale(m.mean), scale(m.mean)],
      m.mean.toFixed(2) + " (n " + m.n + ")"]), -1, "arm-scores", (t) => String(t * 4 + 1)));
  }
  for (const [name, means] of Object.entries(verdict.axes)) {
    add("h3", "Mean score by " + name + " (95% interval)");
    container.append(axisLine(name, means));
  }
}
