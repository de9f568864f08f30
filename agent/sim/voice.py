"""Ground truth of voice-to-voice latency, from the audio alone, defined as the peer baselines do:

- the caller stopped at the end of the last 32 ms window that Silero (livekit-plugins-silero's
  ONNX model, at 16 kHz) scores >= 0.5, computed offline over the whole source file; they
  started at the beginning of the first such window. The windows lie on the 32 ms grid of the
  stream the file was played into (the call's caller channel), as any VAD on the call sees
  them: where a soft word ends moves with the grid by up to ~100 ms ("okay" in the dev set
  ends 589-704 ms in), so a span on the file's own grid can disagree with the call's VAD;
- the agent answered at its first output sample with |x| > 328 (-40 dBFS of 16-bit full scale).

An energy rule would follow breath and room noise and put the end of speech late, which
under-reports v2v. `measure_call` applies these definitions to a call recording (call.wav: the
caller's input as fed on the left, the agent's output as played on the right, both continuous).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from livekit.plugins.silero.onnx_model import OnnxModel, new_inference_session
from rich.console import Console
from rich.table import Table

from services.audio import read_pcm16, resample

SILERO_RATE = 16000
WINDOW = 512  # samples at 16 kHz: 32 ms, Silero's window
VOICED = 0.5
AUDIBLE = 328  # -40 dBFS
FRAME_MS = 20  # a room's audio frame (WebRTC's)
ROOM_RATE = 48000  # WebRTC audio arrives at 48 kHz; the simulated caller feeds it so
# The caller channel is digital silence between utterances; its first sample above this is
# where an utterance was placed (tolerant of a resampler's +-1 ripple around zero).
_ONSET = 8


@dataclass(frozen=True)
class Voice:
    """Where a recording's voice begins and ends, in samples at `rate`."""

    first: int
    end: int
    rate: int


@functools.cache
def _silero() -> OnnxModel:
    return OnnxModel(onnx_session=new_inference_session(force_cpu=True), sample_rate=SILERO_RATE)


def grid_lead(offset: int, rate: int) -> int:
    """How far into Silero's window (16 kHz samples) a clip starting `offset` samples (at
    `rate`) into a stream begins."""
    return round(offset * SILERO_RATE / rate) % WINDOW


def voice_span(pcm: np.ndarray, rate: int, offset: int = 0) -> Voice | None:
    """The voiced span of mono int16 `pcm` (None: Silero hears no voice in it), where `pcm`
    starts `offset` samples (at `rate`) into the stream it is played into."""
    lead = grid_lead(offset, rate)
    x = resample(pcm, rate, SILERO_RATE).astype(np.float32) / 32768.0
    x = np.pad(x, (lead, -(lead + len(x)) % WINDOW))
    model = _silero()
    model.reset()
    probs = np.array([model(x[i : i + WINDOW]) for i in range(0, len(x), WINDOW)])
    voiced = np.nonzero(probs >= VOICED)[0]
    if not voiced.size:
        return None
    scale = rate / SILERO_RATE
    first = max(0, round((voiced[0] * WINDOW - lead) * scale))
    end = min(len(pcm), round(((voiced[-1] + 1) * WINDOW - lead) * scale))
    return Voice(first=first, end=end, rate=rate)


def first_audible(pcm: np.ndarray) -> int | None:
    """Index of the first sample above -40 dBFS, None if there is none."""
    loud = np.abs(pcm.astype(np.int32)) > AUDIBLE
    return int(np.argmax(loud)) if loud.any() else None


@dataclass(frozen=True)
class MeasuredTurn:
    source: str
    voice_end_s: float | None  # where the caller's voice ended on the recording's timeline
    v2v_ms: float | None  # -> the agent's next audible sample (None: it never answered, or talked over)
    # the caller's first voiced sample -> the agent's last audible sample while they spoke
    # (None: the agent was already silent when they began)
    agent_stopped_ms: float | None
    # The agent was still sounding as the caller's voice ended (a word too short for the
    # interruption rule, say): its answer cannot be told from the reply still playing, so the
    # turn has no v2v; counting that reply's sound as an answer at 0 ms would flatter the side.
    talked_over: bool = False


# The longest quiet inside a reply that still counts as the agent talking: Kokoro's pause after
# a sentence (services/tts/text/punctuation.py's 0.25 s, the longest it puts inside a reply).
REPLY_PAUSE_S = 0.3


def measure_call(call_wav: str | Path, sources: list[str | Path]) -> list[MeasuredTurn]:
    """Per source file (in the order the caller said them), v2v measured on the recording.

    Each file's voice comes from the file itself (Silero, on the grid of where it landed); the
    recording only says where that file's audio landed (`_placed`; the caller channel starts
    with the caller's stream) and when the agent made a sound.
    """
    audio, rate = sf.read(str(call_wav), dtype="int16", always_2d=True)
    if audio.shape[1] != 2:
        raise ValueError(f"{call_wav}: expected 2 channels (caller, agent), got {audio.shape[1]}")
    caller, agent = audio[:, 0], np.abs(audio[:, 1].astype(np.int32)) > AUDIBLE
    cursor, out = 0, []
    for path in sources:
        source = read_pcm16(path, rate)
        placed = _placed(caller, cursor, source, rate)
        if placed is None:
            out.append(MeasuredTurn(str(path), None, None, None))
            continue
        cursor = placed + len(source)
        # Silero on the file as the caller fed it (at the room's rate), not as read at the
        # recording's: the two resampling paths put a marginal window's end 32 ms apart
        fed = voice_span(read_pcm16(path, ROOM_RATE), ROOM_RATE, offset=placed * ROOM_RATE // rate)
        if fed is None:  # played, but no voice in it
            out.append(MeasuredTurn(str(path), None, None, None))
            continue
        first = placed + round(fed.first * rate / ROOM_RATE)
        end = placed + round(fed.end * rate / ROOM_RATE)
        answer = agent[end:]
        talked_over = bool(agent[max(0, end - WINDOW * rate // SILERO_RATE) : end + 1].any())
        v2v = float(np.argmax(answer)) / rate * 1000 if answer.any() and not talked_over else None
        # The agent was mid-reply when the caller began if it sounded within a pause's length
        # before: between words, or while its next chunk was still being made, a reply is
        # quiet for a moment. It stopped at its last sound after that (0: it made none).
        talking = np.nonzero(agent[first:end])[0]
        was_talking = agent[max(0, first - int(REPLY_PAUSE_S * rate)) : first + 1].any()
        stopped = ((talking[-1] + 1) / rate * 1000 if talking.size else 0.0) if was_talking else None
        stopped_ms = None if stopped is None else float(stopped)
        out.append(MeasuredTurn(str(path), end / rate, v2v, stopped_ms, talked_over))
    return out


def _placed(caller: np.ndarray, cursor: int, source: np.ndarray, rate: int) -> int | None:
    """Where `source` starts on the caller channel, at or after `cursor` (where the previous
    utterance ended); None if nothing sounds there.

    The caller's stream is 20 ms frames from sample 0 and a file starts on a frame, between
    digital silences. On a clean channel it starts its own quiet lead before the first sample
    that sounds; a phone line between (services/telephone.py) turns a lead of +-1 into +-9 (the
    codec's smallest step, plus resampler ripple: "no" sounded 143 ms early) or can take a first
    sound away. So each frame from half a second before the clean answer to the onset is tried,
    and the one where the channel matches the file best wins: a frame off, speech no longer
    lines up (and the onset alone can be a sample off a frame: two resamplers).
    """
    sounding = np.abs(caller[cursor:].astype(np.int32)) > _ONSET
    if not sounding.any():
        return None
    onset = cursor + int(np.argmax(sounding))
    lead = int(np.argmax(np.abs(source.astype(np.int32)) > _ONSET))
    frame = rate * FRAME_MS // 1000
    first = max(-(-cursor // frame), (onset - lead - rate // 2) // frame)
    last = onset // frame + 1
    n = min(len(source), lead + 5 * rate)  # the lead and the first seconds of sound decide
    clip = source[:n].astype(np.float64)
    heard = np.pad(caller.astype(np.float64), (0, max(0, last * frame + n - len(caller))))
    errors = [np.sum((heard[k * frame : k * frame + n] - clip) ** 2) for k in range(first, last + 1)]
    return (first + int(np.argmin(errors))) * frame


def render_measured(turns: list[MeasuredTurn], call_wav: str | Path, out: Console) -> None:
    """The table `halfsec measure` prints."""
    table = Table(title=f"v2v measured on {call_wav} (Silero end of voice -> agent above -40 dBFS), ms")
    for col in ("turn", "source", "voice ends at s", "v2v", "agent stopped after caller began"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for i, t in enumerate(turns, 1):
        cells = [
            ("-" if v is None else f"{v:.{d}f}")
            for v, d in ((t.voice_end_s, 3), (t.v2v_ms, 1), (t.agent_stopped_ms, 1))
        ]
        if t.talked_over:
            cells[1] = "talked over"
        table.add_row(str(i), Path(t.source).name, *cells)
    out.print(table)
