// halfsec latency dashboard: follows /api/events (server-sent events) and redraws.
// The server does the arithmetic (percentiles, calls); this file only draws what it sends.
"use strict";

import { drawLegend, drawWaterfall, ms } from "./waterfall.js";

const ROWS = 20; // turns in the waterfall

let turns = [];
let state = null;

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
  drawWaterfall(document.getElementById("waterfall"), turns, state.budget_ms, ROWS);
  drawLegend(document.getElementById("legend"), state.budget_ms);
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

window.addEventListener("resize", () => state && drawWaterfall(document.getElementById("waterfall"), turns, state.budget_ms, ROWS));
connect();
