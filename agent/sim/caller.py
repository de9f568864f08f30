"""A simulated caller: plays speech files into the session at real-time pace and listens back.

`CallerMouth` is the session's audio input (what a room's microphone track would deliver: 20 ms
frames at 48 kHz, silence between utterances). `CallerEar` is the session's audio output (what a
room's speaker track would play): it plays out in real time, and can pause, resume and be cut
off, as LiveKit asks. Both mark the ground truth (see voice.py): the caller's first and last
voiced samples as they are fed, the agent's first audible sample and when its audio stopped.

`CallRecorder` is a loopback recording of both: the caller's input exactly as fed (silence
included) and the agent's output as it played (silence filled, cut where it was cut), on one
sample clock, so v2v can be measured from call.wav alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf
from livekit import rtc
from livekit.agents.voice import io

from services.audio import read_pcm16
from services.telephone import through_line

from .voice import FRAME_MS, ROOM_RATE, Voice, first_audible, grid_lead, voice_span

Mark = Callable[[str, float], None]  # (milestone, monotonic time)


@dataclass(frozen=True)
class Utterance:
    """One speech file as the caller says it: mono int16 at `rate`, and its voice (on the
    file's own 32 ms grid; `voice_at` gives it where the caller's stream puts it)."""

    path: Path
    pcm: np.ndarray
    voice: Voice | None
    rate: int = ROOM_RATE
    # False: `voice` holds wherever the clip lands (a test's synthetic audio)
    on_stream_grid: bool = True
    _grids: dict[int, Voice | None] = field(default_factory=dict, repr=False, compare=False)
    # What the agent is fed, when a line between them changes it (`by_telephone`); None: `pcm`
    line_pcm: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def fed(self) -> np.ndarray:
        """The samples the agent hears, on `pcm`'s sample clock."""
        return self.pcm if self.line_pcm is None else self.line_pcm

    def voice_at(self, offset: int) -> Voice | None:
        """Its voice when it starts `offset` samples into the caller's stream."""
        if self.voice is None or not self.on_stream_grid:
            return self.voice
        lead = grid_lead(offset, self.rate)
        if lead not in self._grids:
            self._grids[lead] = voice_span(self.pcm, self.rate, offset)
        return self._grids[lead]

    def prepare(self, step: int) -> None:
        """Compute its voice on every grid a stream fed in `step`-sample frames can start it on."""
        if self.voice is None or not self.on_stream_grid:
            return
        offset = 0
        while grid_lead(offset, self.rate) not in self._grids:
            self.voice_at(offset)
            offset += step


def load_utterance(path: str | Path, rate: int = ROOM_RATE) -> Utterance:
    """A speech file (resampled to `rate`) and its voiced span, None if Silero hears no voice
    in it (silence, noise, a mumble); a clear ValueError if the file is unusable. Any
    channels, rate and length: read_pcm16 mixes to mono; a DC offset is kept as recorded (up to
    ~0.1 of full scale it moves no Silero window; removing it moves many: the mean of LibriVox
    clips alone is ~250)."""
    pcm = read_pcm16(path, rate)
    return Utterance(Path(path), pcm, voice_span(pcm, rate), rate)


def by_telephone(utt: Utterance) -> Utterance:
    """`utt` as the agent hears it over a phone call: through an 8 kHz G.711 μ-law line.

    Its voice stays the one computed on what the caller said, not on what the line delivered:
    the caller stopped speaking when they stopped, and the line (sample-aligned, see
    services/telephone.py) neither delays nor moves it; what narrowband audio does to the VAD's
    and ASR's view of that moment is the pipeline's latency, measured as a phone caller meets it.
    The same rule holds for `halfsec measure`, which takes each turn's voice from its source
    file; call.wav's caller channel records the line's audio, as fed."""
    return replace(utt, line_pcm=through_line(utt.pcm, utt.rate))


def load_turn(path: str | Path, rate: int = ROOM_RATE) -> Utterance:
    """A speech file for one turn of a call: `load_utterance`, and a ValueError if it has no
    voice (the agent never answers silence: the call would wait out its reply timeout)."""
    utt = load_utterance(path, rate)
    if utt.voice is None:
        raise ValueError(f"{path}: no voice in it (Silero hears no speech): a turn needs words")
    return utt


@dataclass
class _Playing:
    utt: Utterance
    voice: Voice | None  # on the stream's grid
    pos: int = 0
    first_voiced: asyncio.Future[float] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    done: asyncio.Future[float] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class CallerMouth(io.AudioInput):
    """20 ms frames at real-time pace: the queued utterance, else silence."""

    def __init__(self, mark: Mark, recorder: CallRecorder, rate: int = ROOM_RATE) -> None:
        super().__init__(label="simulated-caller")
        self._mark, self._recorder, self._rate = mark, recorder, rate
        self._spf = rate * FRAME_MS // 1000
        self._queue: asyncio.Queue[_Playing] = asyncio.Queue()
        self._current: _Playing | None = None
        self._next_at: float | None = None
        self._fed = 0  # samples of the stream so far
        self._closed = False

    async def say(self, utt: Utterance) -> float:
        """Play one utterance; returns the monotonic time its last voiced sample was fed (its
        last sample, if Silero hears no voice in it)."""
        await self.prepare([utt])
        playing = _Playing(utt, None)
        await self._queue.put(playing)
        return await playing.done

    async def prepare(self, utts: Sequence[Utterance]) -> None:
        """Silero on each utterance, for every grid this stream can start it on, off the event
        loop (a long file takes ~1 s): done before a call, its turns start on time."""
        await asyncio.to_thread(lambda: [u.prepare(self._spf) for u in utts])

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
        if self._fed == 0:  # the recording's caller channel starts with this stream
            self._recorder.start(due - FRAME_MS / 1000)
        chunk = np.zeros(self._spf, dtype=np.int16)
        if self._current is None and not self._queue.empty():
            self._current = self._queue.get_nowait()
            self._current.voice = self._current.utt.voice_at(self._fed)
        if (playing := self._current) is not None:
            self._feed(playing, chunk, due)
        self._recorder.add("caller", due - FRAME_MS / 1000, chunk, self._rate)
        self._fed += self._spf
        return rtc.AudioFrame(chunk.tobytes(), self._rate, 1, self._spf)

    def _feed(self, playing: _Playing, chunk: np.ndarray, due: float) -> None:
        utt = playing.utt
        part = utt.fed[playing.pos : playing.pos + self._spf]
        chunk[: len(part)] = part
        start, playing.pos = playing.pos, playing.pos + self._spf

        def at(sample: int) -> float:  # when `sample` of the utterance was fed
            return due - (playing.pos - sample) / self._rate

        if (voice := playing.voice) is not None:
            if start <= voice.first < playing.pos:
                self._mark("first_voiced", at(voice.first))
                playing.first_voiced.set_result(at(voice.first))
            if start < voice.end <= playing.pos:
                self._mark("last_voiced", at(voice.end))
                playing.done.set_result(at(voice.end))
        if playing.pos >= len(utt.pcm):
            self._current = None
            if not playing.done.done():
                playing.done.set_result(due)


class CallerEar(io.AudioOutput):
    """Plays agent audio out in real time (virtually), records what was heard, and marks when
    the agent became audible and when it stopped.

    Frames play back to back from the moment the first one arrives; a pause holds the rest until
    `resume`; `clear_buffer` drops what has not played yet. As in LiveKit's room output, a pause
    outlasts its segment: LiveKit may pause before a reply's first frame exists (the caller spoke
    while it was being made), and that reply's frames wait for the `resume`.
    """

    def __init__(self, mark: Mark, recorder: CallRecorder) -> None:
        super().__init__(label="simulated-caller", capabilities=io.AudioOutputCapabilities(pause=True))
        self._mark, self._recorder = mark, recorder
        self._segment = False  # a segment is being captured or played
        self._started = False  # this segment's first frame has played (LiveKit's playback_started)
        self._audible = False  # this segment has made a sound
        self._played_until = 0.0  # when the audio handed to the recorder so far ends
        self._played_s = 0.0  # seconds of this segment played (or scheduled to)
        self._paused = False
        self._held: list[rtc.AudioFrame] = []  # captured while paused
        self._flushed = False
        self._finish: asyncio.TimerHandle | None = None
        # the first audible sample is marked when it plays, not when it is scheduled: a reply cut
        # off before then was never heard (marked ahead, it read "first_frame_out after
        # agent_stopped" in the turn's record)
        self._first_out: tuple[float, asyncio.TimerHandle] | None = None
        self.started = asyncio.Event()  # set when the agent's first audible sample plays
        self.heard: list[np.ndarray] = []  # everything the agent said, at its own rate
        self.heard_rate = 0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self.heard.append(np.frombuffer(frame.data, np.int16).copy())
        self.heard_rate = frame.sample_rate
        if not self._segment:
            self._segment, self._started, self._audible, self._flushed, self._played_s = True, False, False, False, 0.0
        if self._paused:
            self._held.append(frame)
        else:
            self._play(frame, time.monotonic())

    def _play(self, frame: rtc.AudioFrame, now: float) -> None:
        if not self._started:
            self._started = True
            self.on_playback_started(created_at=time.time())
        # a frame plays right after the previous one, or now if playout had caught up
        play_at = max(now, self._played_until)
        pcm = np.frombuffer(frame.data, np.int16)
        self._recorder.add("agent", play_at, pcm, frame.sample_rate)
        self._played_until = play_at + frame.duration
        self._played_s += frame.duration
        if not self._audible and (i := first_audible(pcm)) is not None:
            self._audible = True
            at = play_at + i / frame.sample_rate
            timer = asyncio.get_running_loop().call_later(max(0.0, at - now), self._heard_first, at)
            self._first_out = (at, timer)

    def _heard_first(self, at: float) -> None:
        self._first_out = None
        self._mark("first_frame_out", at)
        self.started.set()

    def _settle_first(self, until: float) -> None:
        """Playout stops at `until`: a first sample due by then was heard (its timer may not have
        run yet), a later one was not (the audio that held it is taken back)."""
        if self._first_out is None:
            return
        at, timer = self._first_out
        timer.cancel()
        if at <= until:
            self._heard_first(at)
        else:
            self._first_out, self._audible = None, False

    def flush(self) -> None:
        super().flush()
        self._flushed = True
        self._schedule_finish()

    def _schedule_finish(self) -> None:
        if not self._segment or not self._flushed or self._paused:
            return
        if self._finish is not None:
            self._finish.cancel()
        remaining = self._played_until - time.monotonic()
        self._finish = asyncio.get_running_loop().call_later(max(0.0, remaining), self._finished, False)

    def pause(self) -> None:
        super().pause()
        if self._paused:
            return
        self._paused = True
        if not self._segment:
            return
        now = time.monotonic()
        self._unplay(after=now, keep=True)
        if self._finish is not None:
            self._finish.cancel()
        self._stopped(now)

    def resume(self) -> None:
        super().resume()
        if not self._paused:
            return
        self._paused = False
        held, self._held = self._held, []
        now = time.monotonic()
        for frame in held:
            self._play(frame, now)
        self._schedule_finish()

    def clear_buffer(self) -> None:
        if not self._segment:
            return
        now = time.monotonic()
        if not self._paused:
            self._unplay(after=now, keep=False)
            self._stopped(now)
        if self._finish is not None:
            self._finish.cancel()
        self._finished(True)

    def _unplay(self, *, after: float, keep: bool) -> None:
        """Take back the audio scheduled to play after `after`: held for a resume, or dropped."""
        self._settle_first(after)
        cut = self._recorder.cut("agent", after)
        self._played_s -= sum(len(p) for p in cut) / self._recorder.RATE
        self._played_until = min(self._played_until, after)
        if keep and cut:
            pcm = np.concatenate(cut)
            self._held = [rtc.AudioFrame(pcm.tobytes(), self._recorder.RATE, 1, len(pcm)), *self._held]

    def _stopped(self, at: float) -> None:
        self._settle_first(at)
        if self._audible:
            self._mark("agent_stopped", min(at, self._played_until))  # or earlier, if playout ran dry

    def _finished(self, interrupted: bool) -> None:
        if not self._segment:
            return
        if not interrupted:
            self._stopped(self._played_until)
        self._segment, self._held, self._finish = False, [], None
        self.on_playback_finished(playback_position=max(0.0, self._played_s), interrupted=interrupted)

    def write_heard(self, path: Path) -> None:
        """The agent's speech alone, back to back (no silences), as a WAV."""
        audio = np.concatenate(self.heard) if self.heard else np.zeros(0, np.int16)
        sf.write(str(path), audio, self.heard_rate or 24000, subtype="PCM_16")


class CallRecorder:
    """The whole call on one sample clock: left channel the caller, right channel the agent, at
    the room's 48 kHz.

    Lets anyone measure voice-to-voice from the audio itself, independently of the trace. At the
    room's rate the caller's frames are kept as fed, and the agent's 24 kHz samples each land on
    one of the recording's: its first sample above -40 dBFS is in the recording where the caller
    heard it. (At 16 kHz the interpolation fell between samples and missed a soft onset's first
    loud ones: the recording read the agent 2-16 ms later than the trace did.)
    """

    RATE = ROOM_RATE

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self._parts: dict[str, list[tuple[int, np.ndarray]]] = {"caller": [], "agent": []}

    def start(self, at: float) -> None:
        """Sample 0 is at monotonic `at` (the caller's stream starts there), if nothing is
        recorded yet: then the recording's grid is the stream's, and so is a VAD's on it."""
        if not any(self._parts.values()):
            self.t0 = at

    def _index(self, at: float) -> int:
        return max(0, round((at - self.t0) * self.RATE))

    def add(self, who: str, at: float, pcm: np.ndarray, rate: int) -> None:
        if rate != self.RATE:
            # Stateless linear interpolation, not a streaming resampler: a streaming filter holds
            # back each segment's first samples and would place the audio late on the timeline,
            # and a filter's ringing would sound before the first sample did.
            n = len(pcm) * self.RATE // rate
            pcm = np.interp(np.arange(n) * rate / self.RATE, np.arange(len(pcm)), pcm).astype(np.int16)
        if len(pcm):
            self._parts[who].append((self._index(at), pcm.copy()))

    def cut(self, who: str, after: float) -> list[np.ndarray]:
        """Remove `who`'s audio placed after `after` (it did not play); returns it, in order, at
        this recorder's rate."""
        at, kept, cut = self._index(after), [], []
        for i, pcm in self._parts[who]:
            if i + len(pcm) <= at:
                kept.append((i, pcm))
            elif i >= at:
                cut.append(pcm)
            else:
                kept.append((i, pcm[: at - i]))
                cut.append(pcm[at - i :])
        self._parts[who] = kept
        return cut

    def write(self, path: Path) -> None:
        end = max((i + len(p) for parts in self._parts.values() for i, p in parts), default=0)
        out = np.zeros((end + 1, 2), dtype=np.int16)
        for ch, who in enumerate(("caller", "agent")):
            for i, pcm in self._parts[who]:
                out[i : i + len(pcm), ch] = pcm
        sf.write(str(path), out, self.RATE, subtype="PCM_16")
