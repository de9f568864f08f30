"""A Kokoro stand-in with the backend interface, and services/tts served around it on a free
port: the queue, the HTTP handler and the plugin run for real, the model does not."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager

import numpy as np
from aiohttp import web

from configs import load_settings
from services.tts.backend import Stop, SynthesisStopped, UnknownVoice
from services.tts.server import make_app


class FakeKokoro:
    name = "fake"
    sample_rate = 24000
    voices = ["af_heart", "bf_emma"]

    def __init__(self, seconds_per_piece: float = 0.0, *, held: bool = False, first_windows: int = 1) -> None:
        """Each piece takes `seconds_per_piece`; `held` pieces also wait for `release()`, so a
        test decides exactly when each one finishes. A reply's first piece comes in
        `first_windows` parts, each made (and released) as a piece is: `made` names each part
        ("text#2") in the order they were made."""
        self.seconds = seconds_per_piece
        self._gate = threading.Semaphore(0) if held else None
        self._first_windows = first_windows
        self.started: list[str] = []
        self.finished: list[str] = []
        self.made: list[str] = []

    def release(self, pieces: int = 1) -> None:
        assert self._gate is not None
        self._gate.release(pieces)

    def _make(self, text: str, stop: Stop | None) -> np.ndarray:
        deadline = time.monotonic() + self.seconds
        # "computing", and checking for a stop as Kokoro would
        while time.monotonic() < deadline or (self._gate is not None and not self._gate.acquire(timeout=0.002)):
            if stop is not None and stop.is_set():
                raise SynthesisStopped(text)
            time.sleep(0.001)
        return np.full(2400, 0.25, np.float32)  # 0.1 s

    def stream(
        self, text: str, voice: str, speed: float, stop: Stop | None = None, *, first: bool
    ) -> Iterator[np.ndarray]:
        if voice not in self.voices:
            raise UnknownVoice(voice, self.voices)
        self.started.append(text)
        for i in range(1, (self._first_windows if first else 1) + 1):
            audio = self._make(text, stop)
            self.made.append(f"{text}#{i}")
            yield audio
        self.finished.append(text)


@asynccontextmanager
async def fake_service(
    backend: FakeKokoro, keep_at_start: Sequence[str] = (), openers: Sequence[str] = ()
) -> AsyncIterator[str]:
    """The service's app around `backend`, served as `services.tts.server` serves it."""
    app = make_app(backend, load_settings("cpu"), keep_at_start=keep_at_start, openers=openers)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
