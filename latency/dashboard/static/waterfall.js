// The per-turn waterfall (v2v split into the budget's stages), shared by the dashboard and the
// kiosk page (agent/kiosk, served there at /dashboard/). An ES module: both import it.
"use strict";

export const STAGES = ["endpoint", "stt", "llm_first_token", "first_sentence", "tts_first_audio", "transport"];
export const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

export function ms(v) {
  return v === null || v === undefined ? "-" : Math.round(v).toString();
}

const callAndTurn = (t) => `${(t.session_id || "").slice(0, 6)} #${t.turn}`;

// `turns` newest last (turn records as turns.jsonl holds them); the newest `rows` are drawn, newest
// first, under a row for the budget itself, each named by `label(turn)`.
export function drawWaterfall(svg, turns, budget, rows = 20, label = callAndTurn) {
  const shown = turns.slice(-rows).reverse();
  const lines = [{ label: "budget", stages: budget, over: [] }].concat(
    shown.map((t) => ({ label: label(t), stages: t.stages_ms || {},
                        over: t.over_budget || [], v2v: t.v2v_ms, turn: t })));
  const sum = (s) => STAGES.reduce((a, k) => a + (s[k] || 0), 0);
  const xmax = Math.max(budget.total * 1.2, ...lines.map((r) => sum(r.stages)));
  const left = 110, right = 60, rowH = 22, top = 20;
  const width = svg.clientWidth || 900;
  const scale = (width - left - right) / xmax;
  const height = top + lines.length * rowH + 24;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("height", height);
  svg.replaceChildren();
  lines.forEach((row, i) => {
    const y = top + i * rowH;
    svg.appendChild(el("text", { x: 4, y: y + 15, "data-turn": row.turn ? row.turn.turn : "" }, row.label));
    let x = left;
    STAGES.forEach((stage, k) => {
      const v = row.stages[stage];
      if (v === undefined || v === null) return;
      const rect = el("rect", { x, y: y + 3, width: Math.max(v * scale, 0.5), height: rowH - 6, fill: COLORS[k] });
      if (row.over.includes(stage)) rect.setAttribute("class", "over");
      rect.appendChild(el("title", {}, `${stage}: ${ms(v)} ms (budget ${ms(budget[stage])})`));
      svg.appendChild(rect);
      x += v * scale;
    });
    if (i > 0) svg.appendChild(el("text", { x: x + 4, y: y + 15 }, `${ms(row.v2v)} ms`));
  });
  const lx = left + budget.total * scale;
  svg.appendChild(el("line", { x1: lx, x2: lx, y1: top - 6, y2: height - 18, class: "limit" }));
  svg.appendChild(el("text", { x: lx + 3, y: top - 8 }, `${ms(budget.total)} ms`));
  svg.appendChild(el("text", { x: left, y: height - 4 }, "ms after the caller's last voiced sample; red outline: over its stage budget"));
}

export function drawLegend(legend, budget) {
  legend.replaceChildren(...STAGES.map((s, k) => {
    const span = document.createElement("span");
    span.innerHTML = `<i style="background:${COLORS[k]}"></i>${s} ≤ ${ms(budget[s])} ms`;
    return span;
  }));
}
