// halfsec latency dashboard: follows /api/events (server-sent events) and redraws.
// The server does the arithmetic (percentiles, calls); this file only draws what it sends.
"use strict";

const STAGES = ["endpoint", "stt", "llm_first_token", "first_sentence", "tts_first_audio", "transport"];
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
const ROWS = 20; // turns in the waterfall
const SVG = "http://www.w3.org/2000/svg";

let turns = [];
let state = null;

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function ms(v) {
  return v === null || v === undefined ? "-" : Math.round(v).toString();
}

function drawWaterfall() {
  const svg = document.getElementById("waterfall");
  const budget = state.budget_ms;
  const shown = turns.slice(-ROWS).reverse();
  const rows = [{ label: "budget", stages: budget, over: [] }].concat(
    shown.map((t) => ({ label: `${(t.session_id || "").slice(0, 6)} #${t.turn}`, stages: t.stages_ms || {},
                        over: t.over_budget || [], v2v: t.v2v_ms, turn: t })));
  const sum = (s) => STAGES.reduce((a, k) => a + (s[k] || 0), 0);
  const xmax = Math.max(budget.total * 1.2, ...rows.map((r) => sum(r.stages)));
  const left = 110, right = 60, rowH = 22, top = 20;
  const width = svg.clientWidth || 900;
  const scale = (width - left - right) / xmax;
  const height = top + rows.length * rowH + 24;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("height", height);
  svg.replaceChildren();
  rows.forEach((row, i) => {
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

function drawLegend() {
  const legend = document.getElementById("legend");
  legend.replaceChildren(...STAGES.map((s, k) => {
    const span = document.createElement("span");
    span.innerHTML = `<i style="background:${COLORS[k]}"></i>${s} ≤ ${ms(state.budget_ms[s])} ms`;
    return span;
  }));
}

function row(cells, classes = []) {
  const tr = document.createElement("tr");
  cells.forEach((c, i) => {
    const td = document.createElement("td");
    td.textContent = c;
    if (classes[i]) td.className = classes[i];
    tr.appendChild(td);
  });
  return tr;
}

function header(names) {
  const tr = document.createElement("tr");
  for (const n of names) {
    const th = document.createElement("th");
    th.textContent = n;
    tr.appendChild(th);
  }
  return tr;
}

function drawRolling() {
  const table = document.getElementById("rolling");
  const r = state.rolling;
  document.getElementById("window").textContent = `(last ${Math.min(state.window, turns.length)} turns)`;
  const rows = [header(["stage", "budget", "P50", "P95", "P99", "n", "over"])];
  for (const [stage, s] of Object.entries(r.stages)) {
    const cls = (v) => (v === null ? "" : v > s.budget_ms ? "over" : "ok");
    rows.push(row([stage, ms(s.budget_ms), ms(s.p50), ms(s.p95), ms(s.p99), s.n, s.over],
                  ["", "", cls(s.p50), cls(s.p95), cls(s.p99), "", ""]));
  }
  table.replaceChildren(...rows);
}

function drawCalls() {
  const table = document.getElementById("calls");
  const rows = [header(["call", "turns", "v2v P50", "v2v max", `within ${ms(state.budget_ms.total)}`, "interrupted", "fallback", "most overrun"])];
  for (const c of state.calls) {
    rows.push(row([c.session_id, c.turns, ms(c.v2v_p50), ms(c.v2v_max), `${c.within}/${c.answered}`,
                   c.interrupted, c.fallback, c.most_overrun || "-"],
                  ["", "", c.v2v_p50 > state.budget_ms.total ? "over" : "ok"]));
  }
  table.replaceChildren(...rows);
}

function drawHeadline() {
  const h = document.getElementById("headline");
  const w = state.rolling.within_budget;
  const v2v = state.rolling.stages.v2v;
  const last = turns[turns.length - 1];
  const share = w.share === null ? "-" : `${Math.round(w.share * 100)}%`;
  h.innerHTML = "";
  h.append(`${state.total} turns from ${state.source}. Rolling: `);
  const b = document.createElement("b");
  b.className = v2v.p50 !== null && v2v.p50 <= state.budget_ms.total ? "ok" : "over";
  b.textContent = `v2v P50 ${ms(v2v.p50)} ms, P95 ${ms(v2v.p95)} ms`;
  h.append(b, `; ${w.turns}/${w.of} turns (${share}) within ${ms(state.budget_ms.total)} ms.`);
  const latest = document.getElementById("latest");
  latest.textContent = last
    ? `latest: call ${last.session_id} turn ${last.turn}, v2v ${ms(last.v2v_ms)} ms` +
      (last.over_budget && last.over_budget.length ? `, overran: ${last.over_budget.join(", ")}` : "") +
      // the words are left out for a page that may not see them (README, Security)
      (last.user_text === undefined ? "" : ` — caller: “${last.user_text}”`)
    : "no turns yet: waiting for the log to grow";
}

function redraw() {
  drawHeadline();
  drawWaterfall();
  drawLegend();
  drawRolling();
  drawCalls();
}

function connect() {
  const status = document.getElementById("status");
  const source = new EventSource("/api/events");
  source.onmessage = (ev) => {
    const update = JSON.parse(ev.data);
    if (update.reset) turns = [];
    turns = turns.concat(update.turns);
    state = update;
    redraw();
    status.className = "live";
    status.textContent = `live, updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.turns = String(turns.length); // for tests and scripts
  };
  source.onerror = () => {
    status.className = "";
    status.textContent = "disconnected; retrying…";
  };
}

window.addEventListener("resize", () => state && drawWaterfall());
connect();
