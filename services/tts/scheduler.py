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
from collections.abc import AsyncIterator
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
    first: bool
    # the audio as the backend makes it, then None (done) or the exception it raised
    parts: asyncio.Queue[np.ndarray | Exception | None] = field(default_factory=asyncio.Queue)
    stop: Stop = field(default_factory=Stop)
    state: str = "queued"  # -> "running" -> "done"
    left: bool = False  # its caller hung up


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

    async def stream(self, text: str, voice: str, speed: float, *, first: bool) -> AsyncIterator[np.ndarray]:
        """Audio for one piece, when its turn comes, in parts as the backend makes them.
        Leaving early (cancelled, or the iteration closed) takes the piece out of the queue, or
        stops it if it is already being synthesised."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._serve(), name="tts-synthesis-queue")
        job = _Job(text, voice, speed, first)
        self._queue.put_nowait((FIRST if first else LATER, next(self._order), job))
        self._waiting += 1
        try:
            while (part := await job.parts.get()) is not None:
                if isinstance(part, Exception):
                    raise part
                yield part
        finally:
            if job.state == "queued":
                job.left = True
                self._waiting -= 1
                self.counts.dropped += 1  # the worker skips it
            elif job.state == "running":
                job.left = True
                job.stop.set()  # the worker counts it when the backend returns

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            _, _, job = await self._queue.get()
            if job.left:  # its caller left while it waited
                continue
            job.state = "running"
            self._waiting -= 1
            self._running += 1
            try:
                await asyncio.to_thread(self._synthesize, job, loop)
            except SynthesisStopped:
                self.counts.stopped += 1
            except Exception as exc:  # the request fails, the queue goes on
                log.exception("synthesis failed for %r", job.text[:60])
                job.parts.put_nowait(exc)
            else:
                self.counts.synthesized += 1
                job.parts.put_nowait(None)
            finally:
                job.state = "done"
                self._running -= 1

    def _synthesize(self, job: _Job, loop: asyncio.AbstractEventLoop) -> None:
        """In the worker thread: each part to the job's caller as soon as it exists (the loop
        runs these callbacks before the one that ends `to_thread`, so parts come before None)."""
        for part in self._backend.stream(job.text, job.voice, job.speed, job.stop, first=job.first):
            loop.call_soon_threadsafe(job.parts.put_nowait, part)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
