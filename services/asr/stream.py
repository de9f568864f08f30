"""One call's transcription: audio in, the events of protocol.py out.

What gets decoded when (all through the shared DecodeScheduler):
  - at a pause (`asr.preflight_after_s` of silence): everything since the last settled segment.
    If the caller stays silent until the endpoint, that decode is the final: sent as `preflight`
    when ready, and reused as `final` at the endpoint, so normally nothing is left to decode then;
  - if the caller speaks again after a long enough pause and enough speech, that decode is
    committed (the words before a silence are settled), otherwise it counts as an interim;
  - while the caller talks on: interims with Whisper's phrase timestamps, at least
    `asr.interim_interval_s` apart and further apart as the piece grows; phrases that ended well
    before the newest audio settle, so later decodes cover only the rest;
  - a piece nearing Whisper's 30 s window is cut at its quietest frame and committed.
A final is the settled segments plus the last piece, joined in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial

import numpy as np
from pydantic import BaseModel

from configs.settings import AsrSettings

from .endpointer import FRAME, Endpoint, Endpointer, Pause, Resume, SpeechStart
from .engine import Decoded, doubtful
from .protocol import (
    SAMPLE_RATE,
    Closed,
    EndOfSpeech,
    Error,
    Final,
    Interim,
    Preflight,
    SpeechStarted,
)
from .scheduler import DecodeScheduler, Job, Kind

log = logging.getLogger("halfsec.asr")

Emit = Callable[[BaseModel], None]
_CUT_SEARCH_S = 3.0  # a forced cut looks this far back for the quietest frame
_SETTLE_GUARD_S = 1.0  # a phrase ending closer than this to the newest audio may still change


def _finished(phrase: str) -> bool:
    """A phrase Whisper closed with punctuation. One ending in a cut word ("old-s-y-y-y-") or
    trailing off ("ill...") is unsure of its words, and its end timestamp may lie past words it
    swallowed: settling it would lose them (seen in a call: "young man" vanished so)."""
    return phrase[-1:] in ".?!,;:" and not phrase.endswith("...") and not phrase.rstrip(".?!,;:").endswith("-")


class StreamSession:
    def __init__(
        self,
        sid: int,
        endpointer: Endpointer,
        scheduler: DecodeScheduler,
        opts: AsrSettings,
        emit: Emit,
    ) -> None:
        self.sid = sid
        self._ep = endpointer
        self._scheduler = scheduler
        self._opts = opts
        self._emit = emit
        self.received = 0  # samples
        self.decoded_s = 0.0
        self.compute_s = 0.0
        self._utterance = 0  # counts utterances, so late interims of an old one are dropped
        self._base = 0  # stream sample where the current utterance starts
        self._segments: list[Job | str] = []  # settled text, or decodes that will settle it
        self._seg_start = 0
        self._preflight: Job | None = None
        self._last_job: Job | None = None
        self._interim_at = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # -- audio in -------------------------------------------------------------------------

    def feed(self, pcm: np.ndarray) -> None:
        self.received += len(pcm)
        for event in self._ep.push(pcm):
            self._on(event)
        if self._ep.in_speech:
            self._maybe_cut()
            self._maybe_interim()

    async def finish(self) -> Closed:
        """No more audio: end the utterance in progress and wait for every transcript."""
        for event in self._ep.end_of_input():
            self._on(event)
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        return Closed(
            received_s=self.received / SAMPLE_RATE, decoded_s=self.decoded_s, compute_s=self.compute_s
        )

    def close(self) -> None:
        """The client went away: drop its queued decodes and pending transcripts."""
        self._scheduler.drop_stream(self.sid)
        for task in self._tasks:
            task.cancel()

    # -- events ---------------------------------------------------------------------------

    def _on(self, event: SpeechStart | Pause | Resume | Endpoint) -> None:
        if isinstance(event, SpeechStart):
            self._utterance += 1
            self._base = round(event.stream_s * SAMPLE_RATE)
            self._segments, self._seg_start, self._preflight, self._interim_at = [], 0, None, 0
            self._emit(SpeechStarted(stream_s=event.stream_s))
        elif isinstance(event, Pause):
            job = self._submit(Kind.PREFLIGHT, self._seg_start, event.at)
            self._preflight = job
            self._spawn(self._send_preflight(job, list(self._segments)))
        elif isinstance(event, Resume):
            self._resume(event)
        elif isinstance(event, Endpoint):
            self._endpoint(event)

    def _resume(self, event: Resume) -> None:
        job, self._preflight = self._preflight, None
        if job is None or job.future.cancelled():
            return
        if (
            job.end - self._seg_start >= self._opts.commit_min_s * SAMPLE_RATE
            and event.pause_s >= self._opts.commit_pause_s
        ):
            self._commit(job)
        else:
            job.kind = Kind.INTERIM
            self._spawn(self._send_interim(job, list(self._segments)))

    def _endpoint(self, event: Endpoint) -> None:
        t0 = time.monotonic()
        self._emit(
            EndOfSpeech(
                stream_s=(self._base + event.at) / SAMPLE_RATE,
                last_voiced_s=(self._base + event.last_voiced) / SAMPLE_RATE,
                forced=event.forced,
            )
        )
        tail, reused = self._preflight, self._preflight is not None
        if tail is None and event.at > self._seg_start:
            tail = self._submit(Kind.FINAL, self._seg_start, event.at)
        self._spawn(self._send_final(list(self._segments), tail, t0, reused, event.at / SAMPLE_RATE))
        self._segments, self._preflight = [], None

    def _maybe_cut(self) -> None:
        """Keep the undecided piece inside one Whisper window."""
        length = self._ep.length
        if length - self._seg_start < self._opts.max_segment_s * SAMPLE_RATE:
            return
        if self._preflight is not None:  # mid-pause: the words before it are settled
            job, self._preflight = self._preflight, None
            self._commit(job)
            return
        search_from = max(self._seg_start, length - int(_CUT_SEARCH_S * SAMPLE_RATE))
        cut = self._ep.quietest(search_from, length)
        self._commit(self._submit(Kind.COMMIT, self._seg_start, cut))

    def _maybe_interim(self) -> None:
        """An interim while the caller talks on: the undecided piece, with Whisper's phrase
        timestamps, so phrases that ended well before the newest audio can be settled. The
        next one waits at least as long as the piece is, which bounds decoding to about one
        second per second of speech however long the turn."""
        if not self._opts.interim_interval_s or self._preflight is not None:
            return
        if self._last_job is not None and not self._last_job.future.done():
            return  # one decode at a time per stream; the next one will be fresher anyway
        last_piece = self._interim_at - self._seg_start  # what the previous decode covered
        wait = max(self._opts.interim_interval_s * SAMPLE_RATE, last_piece)
        if self._ep.length - self._interim_at < wait:
            return
        start = self._seg_start
        job = self._submit(Kind.INTERIM, start, self._ep.length, timestamps=True)
        job.future.add_done_callback(lambda _: self._settle(job, start))
        self._spawn(self._send_interim(job, list(self._segments)))

    def _settle(self, job: Job, start: int) -> None:
        """Commit the phrases of a finished interim that ended `_SETTLE_GUARD_S` before its
        audio did: later decodes start after them. Runs before the interim is sent."""
        if job.future.cancelled() or job.future.exception() is not None:
            return
        if self._last_job is not job or self._preflight is not None or self._seg_start != start:
            return  # a newer decode already covers this audio from `start`
        piece_s = (job.end - start) / SAMPLE_RATE
        phrases = job.future.result().phrases
        texts = [text for _, text in phrases]
        if piece_s < self._opts.commit_min_s or len(set(texts)) < len(texts):
            return  # short pieces loop ("He was not. He was not."): never settle from those
        settled: list[tuple[float, str]] = []
        for end, text in phrases:  # the leading run of finished phrases, nothing after a doubt
            if end > piece_s - _SETTLE_GUARD_S or not _finished(text):
                break
            settled.append((end, text))
        if settled:
            self._segments.extend(text for _, text in settled)
            self._seg_start = start + round(settled[-1][0] * SAMPLE_RATE / FRAME) * FRAME

    # -- decodes --------------------------------------------------------------------------

    def _submit(self, kind: Kind, start: int, end: int, timestamps: bool = False) -> Job:
        audio = self._ep.audio(start, end)
        run = None
        if timestamps:  # interims are throw-away: not worth a second decode when doubtful
            run = partial(self._scheduler.decode, timestamps=True, retry_doubtful=False)
        elif kind in (Kind.PREFLIGHT, Kind.FINAL):
            # Most preflights at a pause inside a turn are never used, and short pieces are often
            # doubtful ("He was not. He was not."): a final checks them instead (`_sure`). A final
            # decoded at the endpoint is checked the same way, so it needs no retry of its own.
            run = partial(self._scheduler.decode, retry_doubtful=False)
        job = self._scheduler.submit(self.sid, kind, audio, end, run=run)
        job.future.add_done_callback(self._count)
        if log.isEnabledFor(logging.DEBUG):
            job.future.add_done_callback(partial(self._trace, kind, start, end))
        self._last_job = job
        self._interim_at = max(self._interim_at, end)
        return job

    def _trace(self, kind: Kind, start: int, end: int, future: asyncio.Future[Decoded]) -> None:
        result = "cancelled" if future.cancelled() else future.exception() or repr(future.result().text)
        log.debug("stream %d: %s %.2f-%.2f s of utterance %d: %s", self.sid, kind.name,
                  start / SAMPLE_RATE, end / SAMPLE_RATE, self._utterance, result)

    def _count(self, future: asyncio.Future[Decoded]) -> None:
        if not future.cancelled() and future.exception() is None:
            self.decoded_s += future.result().audio_s
            self.compute_s += future.result().decode_ms / 1000.0

    def _commit(self, job: Job) -> None:
        job.kind = Kind.COMMIT
        self._segments.append(job)
        self._seg_start = job.end

    async def _text(self, segments: list[Job | str], tail: Job | None, sure: bool = False) -> str:
        """The transcript of `segments` and `tail`. With `sure` (a final), a doubtful preflight
        among them is first decoded again over the full window."""
        jobs = [*segments, tail] if tail is not None else list(segments)
        parts = [j if isinstance(j, str) else await (self._sure(j) if sure else self._plain(j)) for j in jobs]
        return " ".join(p for p in parts if p)

    @staticmethod
    async def _plain(job: Job) -> str:
        return (await job.future).text

    async def _sure(self, job: Job) -> str:
        decoded: Decoded = await job.future
        if decoded.redecoded or not doubtful(decoded.text):
            return decoded.text
        log.info("stream %d: doubtful %r: decoding again over the full window", self.sid, decoded.text)
        redo = self._scheduler.submit(
            self.sid, Kind.FINAL, job.audio, job.end, run=partial(self._scheduler.decode, full_window=True)
        )
        redo.future.add_done_callback(self._count)
        return (await redo.future).text

    # -- events out -----------------------------------------------------------------------

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_preflight(self, job: Job, segments: list[Job | str]) -> None:
        try:
            text = await self._text(segments, job)
        except (asyncio.CancelledError, Exception):
            return  # superseded or failed: the final reports failures
        if job.kind == Kind.PREFLIGHT and text:  # not demoted: the caller did not speak again
            self._emit(Preflight(text=text))

    async def _send_interim(self, job: Job, segments: list[Job | str]) -> None:
        utterance = self._utterance
        try:
            text = await self._text(segments, job)
        except (asyncio.CancelledError, Exception):
            return
        if utterance == self._utterance and self._ep.in_speech and text:
            self._emit(Interim(text=text))

    async def _send_final(
        self, segments: list[Job | str], tail: Job | None, t0: float, reused: bool, audio_s: float
    ) -> None:
        try:
            text = await self._text(segments, tail, sure=True)
        except Exception as exc:
            log.exception("stream %d: decode failed", self.sid)
            self._emit(Error(message=f"decode failed: {exc}"))
            text = ""
        self._emit(
            Final(
                text=text,
                audio_s=audio_s,
                after_endpoint_ms=(time.monotonic() - t0) * 1000.0,
                reused_preflight=reused,
            )
        )
