"""The one synthesis queue of services/tts: one piece at a time (the model already uses every core
it is given), first pieces of replies before later pieces, and nothing for a caller who left.

A caller waits longest for a reply's first audio; once a reply is playing, its later pieces have
the length of the audio already sent to be ready. So a reply's first piece is served before the
later pieces of other replies (FIFO within each class). A request whose caller hangs up (its
handler is cancelled) is taken out: a queued piece never starts, and a piece being synthesised is
stopped through the backend's `Stop`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field

import numpy as np

from .backend import Stop, SynthesisStopped, TtsBackend

log = logging.getLogger("halfsec.tts")

FIRST, LATER = 0, 1  # priority classes: lower is served first


@dataclass
class PieceCounts:
    """What became of the pieces asked for; served on /health."""

    synthesized: int = 0  # finished (including one finished just as its caller left)
    stopped: int = 0  # stopped part-way because the caller left
    dropped: int = 0  # never started because the caller left


@dataclass
class _Job:
    text: str
    voice: str
    speed: float
    result: asyncio.Future[np.ndarray]
    stop: Stop = field(default_factory=Stop)
    state: str = "queued"  # -> "running" -> "done"


class SynthesisQueue:
    def __init__(self, backend: TtsBackend) -> None:
        self._backend = backend
        self._queue: asyncio.PriorityQueue[tuple[int, int, _Job]] = asyncio.PriorityQueue()
        self._order = itertools.count()  # FIFO within a class; jobs themselves never compare
        self._worker: asyncio.Task[None] | None = None
        self._waiting = 0
        self._running = 0
        self.counts = PieceCounts()

    @property
    def waiting(self) -> int:
        """Pieces queued for a caller still there."""
        return self._waiting

    @property
    def running(self) -> int:
        """Pieces being synthesised now (0 or 1: one worker)."""
        return self._running

    async def synthesize(self, text: str, voice: str, speed: float, *, first: bool) -> np.ndarray:
        """Audio for one piece, when its turn comes. Cancelling the caller takes the piece out of
        the queue, or stops it if it is already being synthesised."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._serve(), name="tts-synthesis-queue")
        job = _Job(text, voice, speed, asyncio.get_running_loop().create_future())
        self._queue.put_nowait((FIRST if first else LATER, next(self._order), job))
        self._waiting += 1
        try:
            return await job.result
        except asyncio.CancelledError:
            if job.state == "queued":
                self._waiting -= 1
                self.counts.dropped += 1  # the worker skips it
            elif job.state == "running":
                job.stop.set()  # the worker counts it when the backend returns
            raise

    async def _serve(self) -> None:
        while True:
            _, _, job = await self._queue.get()
            if job.result.done():  # its caller left while it waited
                continue
            job.state = "running"
            self._waiting -= 1
            self._running += 1
            try:
                audio = await asyncio.to_thread(self._backend.synthesize, job.text, job.voice, job.speed, job.stop)
            except SynthesisStopped:
                self.counts.stopped += 1
            except Exception as exc:  # the request fails, the queue goes on
                log.exception("synthesis failed for %r", job.text[:60])
                if not job.result.done():
                    job.result.set_exception(exc)
            else:
                self.counts.synthesized += 1
                if not job.result.done():
                    job.result.set_result(audio)
            finally:
                job.state = "done"
                self._running -= 1

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
