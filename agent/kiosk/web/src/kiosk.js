// The kiosk page: one button calls the agent in a fresh LiveKit room (token from POST /api/token),
// then shows what the call carries: the agent's audio, both sides' words (LiveKit Agents'
// `lk.transcription` text streams), the agent's state (its `lk.agent.state` attribute) and each
// turn's latency record (data messages on `halfsec.turn`, as the worker writes them to turns.jsonl).
import { ConnectionError, ConnectionErrorReason, Room, RoomEvent, Track } from "livekit-client";
// served by the kiosk beside this bundle, not bundled: the page's view of the call
import { addTurn, drawTurns, showAgentState, showTranscript } from "/static/view.js";

const TRANSCRIPTION_TOPIC = "lk.transcription";
const TURN_TOPIC = "halfsec.turn";
const AGENT_STATE = "lk.agent.state";
const SEGMENT_ID = "lk.segment_id";
const FINAL = "lk.transcription_final";

const $ = (id) => document.getElementById(id);
let room = null;

// One word for tests and styles (body[data-state]), one sentence for people.
function show(state, text, detail = "") {
  document.body.dataset.state = state;
  $("status").textContent = text;
  $("detail").textContent = detail;
  const inCall = state === "connecting" || state === "connected";
  $("call").textContent = inCall ? "Hang up" : "Call the agent";
  $("talk").disabled = state !== "connected" || $("openmic").checked;
}

async function fetchToken() {
  const resp = await fetch("/api/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: $("name").value }),
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const wait = resp.headers.get("Retry-After");
    const error = new Error((body.error || resp.statusText) + (wait ? ` (retry in ${wait} s)` : ""));
    error.status = resp.status;
    throw error;
  }
  return body;
}

async function call() {
  show("fetching", "asking for a token…");
  let grant;
  try {
    grant = await fetchToken();
  } catch (e) {
    // 503: the kiosk has no LiveKit credentials; the message says which are missing
    show(e.status === 503 ? "unconfigured" : "error", `cannot start a call: ${e.message}`);
    return;
  }
  room = new Room();
  listen(room);
  show("connecting", `connecting to ${grant.url}…`);
  try {
    await room.connect(grant.url, grant.token);
  } catch (e) {
    room = null;
    const refused = e instanceof ConnectionError && e.reason === ConnectionErrorReason.NotAllowed;
    if (refused) show("refused", `the LiveKit server at ${grant.url} refused the call`, e.message);
    else show("unreachable", `cannot reach the LiveKit server at ${grant.url}`, `${e.message} (is it running, and is the kiosk's LIVEKIT_URL the address callers reach it at?)`);
    return;
  }
  show("connected", `in call (room ${grant.room}, you are ${grant.identity})`);
  // publish the microphone now, muted unless open mic: a press then only unmutes, at once
  await setMic(true);
  if (!$("openmic").checked) await setMic(false);
}

async function setMic(on) {
  if (!room) return;
  try {
    await room.localParticipant.setMicrophoneEnabled(on);
    $("talk").classList.toggle("live", on);
  } catch (e) {
    show("error", `no microphone: ${e.message}`);
  }
}

function listen(r) {
  r.on(RoomEvent.TrackSubscribed, (track) => {
    if (track.kind === Track.Kind.Audio) $("audio").appendChild(track.attach());
  });
  r.on(RoomEvent.TrackUnsubscribed, (track) => track.detach().forEach((el) => el.remove()));
  r.on(RoomEvent.AudioPlaybackStatusChanged, () => { $("unmute").hidden = r.canPlaybackAudio; });
  r.on(RoomEvent.ParticipantAttributesChanged, (changed, participant) => {
    if (AGENT_STATE in changed) showAgentState(participant.attributes[AGENT_STATE]);
  });
  r.on(RoomEvent.ParticipantConnected, (participant) => {
    if (participant.isAgent) showAgentState(participant.attributes[AGENT_STATE] || "joined");
  });
  r.on(RoomEvent.ParticipantDisconnected, (participant) => {
    if (participant.isAgent) showAgentState("left");
  });
  r.on(RoomEvent.DataReceived, (payload, participant, kind, topic) => {
    if (topic === TURN_TOPIC) addTurn(payload);
  });
  r.on(RoomEvent.Disconnected, () => {
    if (room === r) {
      room = null;
      show("ended", "call ended");
    }
  });
  r.registerTextStreamHandler(TRANSCRIPTION_TOPIC, readTranscript);
}

async function readTranscript(reader, from) {
  const attributes = reader.info.attributes || {};
  const mine = room && from.identity === room.localParticipant.identity;
  await showTranscript(attributes[SEGMENT_ID] || reader.info.id, mine ? "caller" : "agent",
                       attributes[FINAL] === "true", reader);
}

$("call").addEventListener("click", () => (room ? room.disconnect() : call()));
$("unmute").addEventListener("click", () => room && room.startAudio());
$("openmic").addEventListener("change", (e) => {
  $("talk").disabled = !room || e.target.checked;
  setMic(e.target.checked);
});
// press to talk: the mic is live while the button (or the space bar) is held
const talk = (on) => () => { if (room && !$("openmic").checked) setMic(on); };
$("talk").addEventListener("pointerdown", talk(true));
for (const ev of ["pointerup", "pointerleave", "pointercancel"]) $("talk").addEventListener(ev, talk(false));
document.addEventListener("keydown", (e) => { if (e.code === "Space" && !e.repeat && e.target === document.body) talk(true)(); });
document.addEventListener("keyup", (e) => { if (e.code === "Space" && e.target === document.body) talk(false)(); });
window.addEventListener("resize", drawTurns);
show("idle", "ready");
