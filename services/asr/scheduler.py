"""Fair decode queue shared by every stream of the ASR service.

Whisper decodes one piece at a time per worker (CTranslate2 already spreads one decode over
the cores it has). Which piece next:
  1. a transcript someone is waiting on (final or preflight) before a committed segment,
     before an interim: a long talker's interims never delay another caller's end of turn;
  2. among equals, the one queued first;
  3. a stream never has two decodes running, and a newer interim replaces its queued one,
     so a stream holds at most one interim in the queue: the queue is bounded by the streams.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from .engine import Decoded
from .protocol import SAMPLE_RATE

log = logging.getLogger("halfsec.asr")


class Kind(Enum):
    """What a decode is for. Its place in the queue is `priority`, not its value: a final and a
    preflight rank the same, yet stay two kinds (a final's decode options and logs are its own)."""

    PREFLIGHT = "preflight"  # may become the final: someone may be waiting on it
    FINAL = "final"
    COMMIT = "commit"
    INTERIM = "interim"

    @property
    def priority(self) -> int:
        """Lower is served first (rule 1 above)."""
        return _PRIORITY[self]


_PRIORITY = {Kind.PREFLIGHT: 0, Kind.FINAL: 0, Kind.COMMIT: 1, Kind.INTERIM: 2}


@dataclass(eq=False)
class Job:
    stream: int
    kind: Kind
    audio: np.ndarray
    future: asyncio.Future[Any]
    run: Callable[[np.ndarray], Any] | None = None  # instead of the scheduler's decode
    end: int = 0  # the caller's bookmark: where its audio stops
    queued_at: float = field(default_factory=time.monotonic)

    @property
    def audio_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE


class DecodeScheduler:
    def __init__(self, decode: Callable[[np.ndarray], Decoded], workers: int = 1) -> None:
        self.decode = decode  # the default; a job may bring its own (`run`)
        self._workers = workers
        self._queue: list[Job] = []
        self._running: set[int] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self._workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def submit(
        self,
        stream: int,
        kind: Kind,
        audio: np.ndarray,
        end: int = 0,
        run: Callable[[np.ndarray], Any] | None = None,
    ) -> Job:
        for old in [j for j in self._queue if j.stream == stream and j.kind == Kind.INTERIM]:
            self._queue.remove(old)
            old.future.cancel()
        job = Job(stream, kind, audio, asyncio.get_running_loop().create_future(), run, end)
        self._queue.append(job)
        self._wake.set()
        return job

    def drop_stream(self, stream: int) -> None:
        """The stream went away: its queued decodes are cancelled (a running one finishes)."""
        for job in [j for j in self._queue if j.stream == stream]:
            self._queue.remove(job)
            job.future.cancel()

    def _next(self) -> Job | None:
        ready = [j for j in self._queue if j.stream not in self._running]
        if not ready:
            return None
        job = min(ready, key=lambda j: (j.kind.priority, j.queued_at))
        self._queue.remove(job)
        return job

    async def _worker(self) -> None:
        while True:
            job = self._next()
            if job is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._running.add(job.stream)
            started = time.monotonic()
            try:
                result = await asyncio.to_thread(job.run or self.decode, job.audio)
                log.debug(
                    "stream %d %s %.1fs: waited %.0f ms, decoded in %.0f ms",
                    job.stream,
                    job.kind.name,
                    job.audio_s,
                    (started - job.queued_at) * 1000,
                    (time.monotonic() - started) * 1000,
                )
                if not job.future.done():
                    job.future.set_result(result)
            except Exception as exc:  # a failed decode fails its transcript, not the service
                if not job.future.done():
                    job.future.set_exception(exc)
            finally:
                self._running.discard(job.stream)
                self._wake.set()  # the stream's next job may be ready now
