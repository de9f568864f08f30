"""The one synthesis queue of services/tts: one step of work at a time (the model already uses
every core it is given), replies' first audio before anything else, and nothing for a caller who
left.

A caller waits longest for a reply's first audio; once a reply is playing, what follows has the
length of the audio already sent to be ready. A step is what the backend makes between two parts
of a piece: a later piece whole or in windows (`tts.later_window_s`), a reply's first piece in
its decoder windows (windows.py: a first window, then its rest whole or in those windows). The
queue serves, in order: the first step of a reply's first piece; the rest of a first piece
already started (its first window is playing); later pieces. FIFO within each class. So a new
reply's first window overtakes the next window of another reply's first piece, and of a later
piece: in `halfsec bench calls --concurrency 2`, a first piece that waited for another reply's
whole first piece took 1.1-1.6 s to first audio, and 0.8-1 s behind another first piece's rest
decoded in one run (docs/benchmarks.md). A request whose caller hangs up (its handler
is cancelled) is taken out: a queued piece never starts, a started one is not continued, and a
step being made is stopped through the backend's `Stop`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import numpy as np

from .backend import Stop, SynthesisStopped, TtsBackend

log = logging.getLogger("halfsec.tts")

# priority classes, lower served first: a reply's first audio, the rest of its first piece, later pieces
FIRST, CONTINUING, LATER = 0, 1, 2


@dataclass
class PieceCounts:
    """What became of the pieces asked for; served on /health."""

    synthesized: int = 0  # finished (including one finished just as its caller left)
    stopped: int = 0  # stopped part-way because the caller left (or left before its end was seen)
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
    order: int = 0  # FIFO within a class, kept when a started piece queues for its next step
    steps: Iterator[np.ndarray] | None = None  # the backend's parts, once started
    state: str = "queued"  # -> "running" (started, until its last part) -> "done"
    left: bool = False  # its caller hung up
    queued_at: float = field(default_factory=time.monotonic)


class SynthesisQueue:
    def __init__(self, backend: TtsBackend) -> None:
        self._backend = backend
        self._heap: list[tuple[int, int, _Job]] = []  # (class, order, job): jobs themselves never compare
        self._ready = asyncio.Event()  # the heap has work
        # The heap's first (class, order), read by the worker thread between two parts: the piece
        # being made goes on while it comes first. A tuple is swapped whole, so the read is safe.
        self._head: tuple[int, int] | None = None
        self._order = itertools.count()
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
        """Pieces started and not finished: at most one making audio now, others between steps."""
        return self._running

    async def stream(self, text: str, voice: str, speed: float, *, first: bool) -> AsyncIterator[np.ndarray]:
        """Audio for one piece, when its turn comes, in parts as the backend makes them.
        Leaving early (cancelled, or the iteration closed) takes the piece out of the queue, or
        stops it if it is already being synthesised."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._serve(), name="tts-synthesis-queue")
        job = _Job(text, voice, speed, first, order=next(self._order))
        self._put(FIRST if first else LATER, job)
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
                job.stop.set()  # the worker counts it when its step returns or it is next dequeued

    def _put(self, kind: int, job: _Job) -> None:
        heapq.heappush(self._heap, (kind, job.order, job))
        self._head = self._heap[0][:2]
        self._ready.set()

    async def _get(self) -> _Job:
        while not self._heap:
            self._ready.clear()
            await self._ready.wait()
        _, _, job = heapq.heappop(self._heap)
        self._head = self._heap[0][:2] if self._heap else None
        return job

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = await self._get()
            if job.state == "queued":
                if job.left:  # its caller left while it waited
                    continue
                job.state = "running"
                self._waiting -= 1
                self._running += 1
                job.steps = self._backend.stream(job.text, job.voice, job.speed, job.stop, first=job.first)
                log.debug(
                    "piece %d (%s, %d chars) started after %.0f ms queued",
                    job.order,
                    "first" if job.first else "later",
                    len(job.text),
                    (time.monotonic() - job.queued_at) * 1000,
                )
            try:
                if job.left:  # its caller left between two steps
                    raise SynthesisStopped(job.text)
                if not await asyncio.to_thread(self._synthesize, job, loop):
                    self._put(CONTINUING if job.first else LATER, job)
                    continue
            except SynthesisStopped:
                self.counts.stopped += 1
            except Exception as exc:  # the request fails, the queue goes on
                log.exception("synthesis failed for %r", job.text[:60])
                job.parts.put_nowait(exc)
            else:
                self.counts.synthesized += 1
                job.parts.put_nowait(None)
            job.state, job.steps = "done", None
            self._running -= 1

    def _synthesize(self, job: _Job, loop: asyncio.AbstractEventLoop) -> bool:
        """In the worker thread: `job`'s parts to its caller as soon as each exists (the loop runs
        these callbacks before the one that ends `to_thread`, so parts come before None). True
        once the piece is whole; False when, after a part, something queued comes before the
        rest of this piece: the rest waits its turn."""
        assert job.steps is not None
        rest = (CONTINUING if job.first else LATER, job.order)
        began = time.perf_counter()
        for part in job.steps:
            loop.call_soon_threadsafe(job.parts.put_nowait, part)
            # HALFSEC_LOG_LEVEL=DEBUG: which piece held the cores when, to chase a slow first audio
            log.debug(
                "piece %d: %.2f s of audio in %.0f ms",
                job.order,
                len(part) / self._backend.sample_rate,
                (time.perf_counter() - began) * 1000,
            )
            began = time.perf_counter()
            if (head := self._head) is not None and head < rest:
                return False
        return True

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
