"""A simulated caller: plays speech files into the session at real-time pace and listens back.

`CallerMouth` is the session's audio input (what a room's microphone track would deliver: 20 ms
frames at 48 kHz, silence between utterances). `CallerEar` is the session's audio output (what a
room's speaker track would play): it plays out in real time, so interruptions and playout waits
behave as in a room. Both stamp the ground truth of voice-to-voice latency: the moment the last
voiced sample was fed, and the moment the first agent frame came out.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from livekit import rtc
from livekit.agents.voice import io

from latency import TurnTracer
from services.audio import read_pcm16

ROOM_RATE = 48000  # WebRTC audio arrives at 48 kHz
FRAME_MS = 20


def load_speech(path: str | Path, rate: int = ROOM_RATE) -> np.ndarray:
    """A speech file as mono int16 at `rate` (LiveKit's resampler), with a clear error if unusable."""
    return read_pcm16(path, rate)


def last_voiced_sample(pcm: np.ndarray, rate: int, floor_db: float = -35.0) -> int:
    """Index just past the last 10 ms window within `floor_db` of the loudest window.

    The ground truth for "the caller stopped talking": trailing room noise and breath in the
    recording sit well below speech, so they do not count as voice.
    """
    win = rate // 100
    n = len(pcm) // win
    if n == 0:
        return len(pcm)
    frames = pcm[: n * win].astype(np.float32).reshape(n, win)
    rms = np.sqrt((frames**2).mean(axis=1)) + 1e-9
    voiced = np.nonzero(20 * np.log10(rms / rms.max()) > floor_db)[0]
    return int((voiced[-1] + 1) * win) if voiced.size else len(pcm)


@dataclass
class _Utterance:
    pcm: np.ndarray
    last_voiced: int
    pos: int = 0
    done: asyncio.Future[float] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class CallerMouth(io.AudioInput):
    """20 ms frames at real-time pace: the queued utterance, else silence."""

    def __init__(self, tracer: TurnTracer, recorder: CallRecorder, rate: int = ROOM_RATE) -> None:
        super().__init__(label="simulated-caller")
        self._tracer, self._recorder, self._rate = tracer, recorder, rate
        self._spf = rate * FRAME_MS // 1000
        self._queue: asyncio.Queue[_Utterance] = asyncio.Queue()
        self._current: _Utterance | None = None
        self._next_at: float | None = None
        self._closed = False

    async def say(self, pcm: np.ndarray) -> float:
        """Play one utterance; returns the monotonic time its last voiced sample was fed."""
        utt = _Utterance(pcm, last_voiced_sample(pcm, self._rate))
        await self._queue.put(utt)
        return await utt.done

    def close(self) -> None:
        self._closed = True

    async def __anext__(self) -> rtc.AudioFrame:
        if self._closed:
            raise StopAsyncIteration
        # absolute schedule: sleeping 20 ms per frame would drift behind real time
        now = time.monotonic()
        self._next_at = now if self._next_at is None else self._next_at + FRAME_MS / 1000
        if self._next_at > now:
            await asyncio.sleep(self._next_at - now)
        # The frame's audio ends at its scheduled real-time position, even if the event loop
        # delivers it late: the caller's voice stopped then, and any lag is pipeline latency.
        due = self._next_at
        chunk = np.zeros(self._spf, dtype=np.int16)
        if self._current is None and not self._queue.empty():
            self._current = self._queue.get_nowait()
        utt = self._current
        if utt is not None:
            part = utt.pcm[utt.pos : utt.pos + self._spf]
            chunk[: len(part)] = part
            start, utt.pos = utt.pos, utt.pos + self._spf
            if start < utt.last_voiced <= utt.pos:
                t = due - (utt.pos - utt.last_voiced) / self._rate
                self._tracer.mark("last_voiced", t)
                utt.done.set_result(t)
            if utt.pos >= len(utt.pcm):
                self._current = None
                if not utt.done.done():
                    utt.done.set_result(due)
        self._recorder.add("caller", due - FRAME_MS / 1000, chunk, self._rate)
        return rtc.AudioFrame(chunk.tobytes(), self._rate, 1, self._spf)


class CallerEar(io.AudioOutput):
    """Plays agent audio out in real time (virtually) and records it."""

    def __init__(self, tracer: TurnTracer, recorder: CallRecorder) -> None:
        super().__init__(label="simulated-caller", capabilities=io.AudioOutputCapabilities(pause=False))
        self._tracer, self._recorder = tracer, recorder
        self._seg_start: float | None = None  # when the current segment started playing
        self._seg_dur = 0.0  # seconds of audio in the current segment
        self._finish: asyncio.TimerHandle | None = None
        self.heard: list[np.ndarray] = []  # everything the agent said, at its own rate
        self.heard_rate = 0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        now = time.monotonic()
        if self._seg_start is None:
            self._seg_start = now
            self._seg_dur = 0.0
            self._tracer.mark("first_frame_out", now)
            self.on_playback_started(created_at=time.time())
        # a frame plays right after the previous one, or now if playout had caught up
        play_at = max(now, self._seg_start + self._seg_dur)
        pcm = np.frombuffer(frame.data, np.int16)
        self._recorder.add("agent", play_at, pcm, frame.sample_rate)
        self.heard.append(pcm.copy())
        self.heard_rate = frame.sample_rate
        self._seg_dur += frame.duration

    def flush(self) -> None:
        super().flush()
        if self._seg_start is None:
            return
        remaining = self._seg_start + self._seg_dur - time.monotonic()
        self._finish = asyncio.get_running_loop().call_later(max(0.0, remaining), self._finished, False)

    def write_heard(self, path: Path) -> None:
        """The agent's speech alone, back to back (no silences), as a WAV."""
        audio = np.concatenate(self.heard) if self.heard else np.zeros(0, np.int16)
        sf.write(str(path), audio, self.heard_rate or 24000, subtype="PCM_16")

    def clear_buffer(self) -> None:
        if self._seg_start is None:
            return
        if self._finish is not None:
            self._finish.cancel()
        self._finished(True)

    def _finished(self, interrupted: bool) -> None:
        if self._seg_start is None:
            return
        played = min(self._seg_dur, time.monotonic() - self._seg_start)
        self._seg_start, self._finish = None, None
        self._tracer.mark("agent_speech_end")
        if interrupted:
            self._tracer.mark("interrupted")
        self.on_playback_finished(playback_position=played, interrupted=interrupted)


class CallRecorder:
    """The whole call on one timeline: left channel the caller, right channel the agent (16 kHz).

    Lets anyone measure voice-to-voice from the audio itself, independently of the trace.
    """

    RATE = 16000

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self._parts: dict[str, list[tuple[float, np.ndarray]]] = {"caller": [], "agent": []}

    def add(self, who: str, at: float, pcm: np.ndarray, rate: int) -> None:
        if rate != self.RATE:
            # Stateless linear interpolation, not a streaming resampler: a streaming filter holds
            # back each segment's first samples and would place the audio late on the timeline.
            n = len(pcm) * self.RATE // rate
            pcm = np.interp(np.arange(n) * rate / self.RATE, np.arange(len(pcm)), pcm).astype(np.int16)
        if len(pcm):
            self._parts[who].append((at - self.t0, pcm.copy()))

    def write(self, path: Path) -> None:
        end = max((t + len(p) / self.RATE for parts in self._parts.values() for t, p in parts), default=0.0)
        out = np.zeros((int(end * self.RATE) + 1, 2), dtype=np.int16)
        for ch, who in enumerate(("caller", "agent")):
            for t, pcm in self._parts[who]:
                i = max(0, int(t * self.RATE))
                seg = pcm[: len(out) - i]
                out[i : i + len(seg), ch] = seg
        sf.write(str(path), out, self.RATE, subtype="PCM_16")


def measured_v2v_ms(call_wav: str | Path, sources: list[str | Path]) -> list[float | None]:
    """Voice-to-voice per turn, measured from the call recording alone: from where each source
    file's last voiced sample landed on the caller channel to the agent's next sound. The
    independent clock the trace's `v2v_ms` is checked against (tests, `halfsec bench calls`).

    Each utterance's end of voice comes from its source file (the caller's own definition); the
    recording only says where that file's audio, and the agent's first sound, landed in time.
    """
    audio, rate = sf.read(str(call_wav), dtype="int16")
    caller, agent_on = audio[:, 0], audio[:, 1] != 0  # nothing but agent frames on channel 2
    cursor, out = 0, []
    for path in sources:
        source = load_speech(path, rate)
        onset = int(np.argmax(np.abs(source) > 500))  # first clearly audible sample
        placed = cursor + int(np.argmax(np.abs(caller[cursor:]) > 500))
        end = placed - onset + last_voiced_sample(source, rate)
        answer = agent_on[end:]
        out.append(float(np.argmax(answer)) / rate * 1000 if answer.any() else None)
        cursor = placed + len(source)
    return out
