// What the kiosk page shows of a call: the transcript, the agent's state and the turns' waterfall.
// Served as is (not bundled) beside kiosk.js, which feeds it from the room; it knows nothing of
// LiveKit, so tests/test_kiosk_browser.py drives it in Chromium with real turn records.
import { drawLegend, drawWaterfall } from "/dashboard/waterfall.js";

const $ = (id) => document.getElementById(id);
const turns = [];
let budget = null;

export function showAgentState(state) {
  $("agent-state").textContent = state || "-";
  $("agent-state").dataset.state = state || "";
}

// One transcript segment from one stream (`chunks`: its text, piece by piece). The agent streams a
// reply segment as deltas in one stream; the caller's words come as whole texts, each stream
// replacing the segment's last. Both read the same way: a segment shows its latest stream, whole.
export async function showTranscript(segmentId, who, final, chunks) {
  let line = document.querySelector(`#transcript li[data-segment="${CSS.escape(segmentId)}"]`);
  if (!line) {
    line = document.createElement("li");
    line.dataset.segment = segmentId;
    line.className = who; // "caller" or "agent"
    $("transcript").appendChild(line);
  }
  line.classList.toggle("final", final);
  let text = "";
  for await (const chunk of chunks) {
    text += chunk;
    line.textContent = text;
    line.scrollIntoView({ block: "nearest" });
  }
}

// A `halfsec.turn` data message: one turn record, as the worker appends it to turns.jsonl.
export function addTurn(payload) {
  let record;
  try {
    record = JSON.parse(typeof payload === "string" ? payload : new TextDecoder().decode(payload));
  } catch {
    return null; // not a turn record: nothing to draw
  }
  if (!record || typeof record !== "object") return null;
  turns.push(record);
  if (record.budget_ms && record.budget_ms.total) budget = record.budget_ms;
  document.body.dataset.turns = String(turns.length); // for tests and scripts
  drawTurns();
  return record;
}

export function drawTurns() {
  if (!budget) return;
  $("no-turns").hidden = true;
  drawWaterfall($("waterfall"), turns, budget, 8, (t) => `turn ${t.turn}`); // one call: no call names
  drawLegend($("legend"), budget);
}
