"""One call's transcription: audio in, the events of protocol.py out.

The glue between the parts: audio goes to the endpointer, its events to the policy (policy.py
decides what is decoded when, and which transcripts go out), the policy's decodes to the shared
DecodeScheduler with the utterance's samples, their outcomes back to the policy, and its events
out to the client, the final timed from its endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from functools import partial

import numpy as np
from pydantic import BaseModel

from configs.settings import AsrSettings

from .decodes import DecodeRequest
from .endpointer import Endpoint, Endpointer, Event
from .engine import Decoded
from .policy import Action, DecodeFailed, FinalText, Reclassify, StreamPolicy
from .protocol import SAMPLE_RATE, Closed, Error, Final
from .scheduler import DecodeScheduler, Job, Kind

log = logging.getLogger("halfsec.asr")

Emit = Callable[[BaseModel], None]


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
        self._emit = emit
        self._policy = StreamPolicy(opts, endpointer.quietest)
        self.received = 0  # samples
        self.decoded_s = 0.0
        self.compute_s = 0.0
        # The job of each request the policy still holds: its kind may change in the queue.
        self._jobs: weakref.WeakKeyDictionary[DecodeRequest, Job] = weakref.WeakKeyDictionary()
        # Each ended utterance's audio until its final is sent: a final may decode it again after
        # the endpointer has moved on to the next utterance.
        self._ended: dict[int, np.ndarray] = {}
        self._progress = asyncio.Event()  # a decode came back: `finish` looks again
        self._endpoint_at: dict[int, float] = {}  # utterance -> monotonic time of its endpoint
        self._closed = False

    # -- audio in -------------------------------------------------------------------------

    def feed(self, pcm: np.ndarray) -> None:
        self.received += len(pcm)
        for event in self._ep.push(pcm):  # each event handled while its utterance is the current one
            self._on(event)
        self._act(self._policy.heard(self._ep.length))

    async def finish(self) -> Closed:
        """No more audio: end the utterance in progress and wait for every transcript."""
        for event in self._ep.end_of_input():
            self._on(event)
        # Wait for the transcripts, not for every decode: a final whose first piece failed is sent
        # at once, without waiting for the pieces after it.
        while self._policy.waiting and not self._closed:
            self._progress.clear()
            await self._progress.wait()
        return Closed(received_s=self.received / SAMPLE_RATE, decoded_s=self.decoded_s, compute_s=self.compute_s)

    def close(self) -> None:
        """The client went away: drop its queued decodes and pending transcripts."""
        self._closed = True
        self._scheduler.drop_stream(self.sid)
        self._progress.set()

    def _on(self, event: Event) -> None:
        if isinstance(event, Endpoint):  # a final's latency counts from here
            self._endpoint_at[self._policy.utterance] = time.monotonic()
            self._ended[self._policy.utterance] = self._ep.audio()
        self._act(self._policy.on_event(event))

    # -- the policy's actions -------------------------------------------------------------

    def _act(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, DecodeRequest):
                self._submit(action)
            elif isinstance(action, Reclassify):
                if (job := self._jobs.get(action.request)) is not None:
                    job.kind = action.kind
            elif isinstance(action, FinalText):
                t0 = self._endpoint_at.pop(action.utterance)
                self._ended.pop(action.utterance, None)
                if action.unheard:
                    log.info("stream %d: speech, but no words even decoded whole", self.sid)
                self._emit(
                    Final(
                        text=action.text,
                        audio_s=action.audio_s,
                        after_endpoint_ms=(time.monotonic() - t0) * 1000.0,
                        reused_preflight=action.reused_preflight,
                        unheard=action.unheard,
                    )
                )
            elif isinstance(action, DecodeFailed):
                log.error("stream %d: decode failed", self.sid, exc_info=action.error)
                self._emit(Error(message=f"decode failed: {action.error}"))
            else:
                self._emit(action)

    def _submit(self, request: DecodeRequest) -> None:
        ended = self._ended.get(request.utterance)
        audio = self._ep.audio(request.start, request.end) if ended is None else ended[request.start : request.end]
        if request.window_s is not None:
            log.info("stream %d: decoding %s again over a %.0f s window", self.sid, request.kind.name, request.window_s)
        options = request.options
        run = partial(self._scheduler.decode, **options) if options else None
        job = self._scheduler.submit(self.sid, request.kind, audio, request.end, run=run)
        self._jobs[request] = job
        job.future.add_done_callback(self._count)
        if log.isEnabledFor(logging.DEBUG):
            job.future.add_done_callback(partial(self._trace, request.kind, request.start, request.end))
        job.future.add_done_callback(partial(self._done, request))

    def _done(self, request: DecodeRequest, future: asyncio.Future[Decoded]) -> None:
        if self._closed:
            return
        if future.cancelled():
            self._act(self._policy.cancelled(request))
        elif (error := future.exception()) is not None:
            self._act(self._policy.failed(request, error))
        else:
            self._act(self._policy.decoded(request, future.result()))
        self._progress.set()

    def _trace(self, kind: Kind, start: int, end: int, future: asyncio.Future[Decoded]) -> None:
        result = "cancelled" if future.cancelled() else future.exception() or repr(future.result().text)
        log.debug(
            "stream %d: %s %.2f-%.2f s of utterance %d: %s",
            self.sid,
            kind.name,
            start / SAMPLE_RATE,
            end / SAMPLE_RATE,
            self._policy.utterance,
            result,
        )

    def _count(self, future: asyncio.Future[Decoded]) -> None:
        if not future.cancelled() and future.exception() is None:
            self.decoded_s += future.result().audio_s
            self.compute_s += future.result().decode_ms / 1000.0
