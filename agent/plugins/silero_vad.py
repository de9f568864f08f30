"""The session's VAD: LiveKit's Silero plugin, each stream's model scoring the first sound after
`vad.forget_after_quiet_s` of quiet from a cleared state (the rule, and why: services/silero_state.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
from livekit.plugins import silero

from services.silero_state import ForgetsInQuiet


class _Forgetful:
    """A stream's model (the plugin's `OnnxModel`), its calls through `ForgetsInQuiet`; all
    else (window size, sample rate, reset) is the model's."""

    def __init__(self, model: Any, forget_after_quiet_s: float) -> None:
        self._model = model
        window_s = model.window_size_samples / model.sample_rate
        self.calls = ForgetsInQuiet(model, model.reset, window_s=window_s, after_s=forget_after_quiet_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __call__(self, window: np.ndarray) -> float:
        return self.calls(window)


class SileroVAD(silero.VAD):
    """`SileroVAD.load(forget_after_quiet_s=..., **silero options)`; None: the plugin's streams
    as they are."""

    _forget_after_quiet_s: float | None = None

    @classmethod
    def load(cls, *, forget_after_quiet_s: float | None = None, **options: Any) -> SileroVAD:  # type: ignore[override]
        vad = super().load(**options)
        vad._forget_after_quiet_s = forget_after_quiet_s
        return vad

    def stream(self) -> silero.vad.VADStream:
        stream = super().stream()
        if self._forget_after_quiet_s is not None:
            # The plugin keeps the model on the stream (`_model`; livekit-plugins-silero is pinned
            # with livekit-agents). Its task first reads it once the loop runs it, after this.
            stream._model = _Forgetful(stream._model, self._forget_after_quiet_s)
        return stream
