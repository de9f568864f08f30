"""The interface every Kokoro backend implements, and the choice between them."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from configs import Settings


class UnknownVoice(ValueError):
    def __init__(self, voice: str, voices: list[str]) -> None:
        super().__init__(f"unknown voice {voice!r}; available: {', '.join(voices)}")


class TtsBackend(Protocol):
    name: str
    sample_rate: int

    @property
    def voices(self) -> list[str]: ...

    def synthesize(self, text: str, voice: str, speed: float) -> np.ndarray:
        """Mono float32 audio at `sample_rate` for `text` (one sentence or clause)."""
        ...


def load_backend(settings: Settings) -> TtsBackend:
    if settings.tts.backend == "onnx":
        from .kokoro_onnx import KokoroOnnx

        return KokoroOnnx(settings)
    from .kokoro_torch import KokoroTorch

    return KokoroTorch(settings)
