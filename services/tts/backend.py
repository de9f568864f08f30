"""The interface every Kokoro backend implements, and the choice between them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

from configs import Settings


class UnknownVoice(ValueError):
    def __init__(self, voice: str, voices: list[str]) -> None:
        super().__init__(f"unknown voice {voice!r}; available: {', '.join(voices)}")


class SynthesisStopped(Exception):
    """A synthesis ended early because its `Stop` was set (the caller hung up)."""


class Stop:
    """Set from the event loop when nobody wants a synthesis any more; the backend running it in
    its thread is told through the callbacks it registered (e.g. to abort an onnxruntime run)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._callbacks: list[Callable[[], None]] = []

    def set(self) -> None:
        with self._lock:
            self._set, callbacks = True, self._callbacks[:]
        for callback in callbacks:
            callback()

    def is_set(self) -> bool:
        return self._set

    def on_set(self, callback: Callable[[], None]) -> None:
        """Call `callback` when the stop is set (at once if it already is)."""
        with self._lock:
            if not self._set:
                self._callbacks.append(callback)
                return
        callback()


class TtsBackend(Protocol):
    name: str
    sample_rate: int

    @property
    def voices(self) -> list[str]: ...

    def stream(
        self, text: str, voice: str, speed: float, stop: Stop | None = None, *, first: bool
    ) -> Iterator[np.ndarray]:
        """Mono float32 audio at `sample_rate` for `text` (one piece: at most MAX_PIECE_CHARS),
        in parts as they are made; `first`: a reply's first piece, whose first part a caller is
        waiting for. Runs in a worker thread; raises SynthesisStopped soon after `stop` is set."""
        ...


def warm(backend: TtsBackend, text: str, voice: str) -> None:
    """Run `text` through the backend before the first caller, and whatever else it warms
    (`warm_lengths`: the onnx backend's bf16 decoder builds kernels per input length)."""
    render(backend, text, voice, 1.0)
    if (more := getattr(backend, "warm_lengths", None)) is not None:
        more(text, voice)


def render(backend: TtsBackend, text: str, voice: str, speed: float) -> np.ndarray:
    """A piece's audio whole, as a later piece is made (warming up, benchmarks)."""
    parts = list(backend.stream(text, voice, speed, first=False))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def load_backend(settings: Settings) -> TtsBackend:
    if settings.tts.backend == "onnx":
        from .kokoro_onnx import KokoroOnnx

        return KokoroOnnx(settings)
    from .kokoro_torch import KokoroTorch

    return KokoroTorch(settings)
