"""A decode the stream policy asks for, and what came of it.

Positions are in utterance samples (the endpointer's), so the policy never holds audio: the
stream reads the samples when it hands the request to the scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass

from .engine import Decoded
from .scheduler import Kind

# WhisperEngine.decode's keyword defaults: a request passes only the options that differ.
_ENGINE_DEFAULTS: dict[str, object] = {"timestamps": False, "retry_doubtful": True, "window_s": None}


@dataclass(eq=False)  # each request is one decode: compared and hashed by identity
class DecodeRequest:
    kind: Kind  # may change while it runs: a preflight becomes a commit or an interim
    start: int
    end: int
    utterance: int = 0  # whose audio: the stream keeps an utterance's after its endpoint
    timestamps: bool = False  # Whisper's phrase ends too: an interim settles phrases with them
    retry_doubtful: bool = True  # the engine decodes a doubtful piece again over the full window
    window_s: float | None = None  # a second decode over this wider window, straight away
    # Second decodes over a wider window, made once and shared by a preflight and its final:
    redo: DecodeRequest | None = None  # of this piece, which came out doubtful
    rescue: DecodeRequest | None = None  # of the whole utterance, of which no words came
    result: Decoded | None = None
    error: BaseException | None = None
    cancelled: bool = False  # the stream closed, or a newer interim replaced it in the queue

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None or self.cancelled

    @property
    def options(self) -> dict[str, object]:
        """WhisperEngine.decode's keyword arguments where this decode differs from its defaults."""
        chosen = {"timestamps": self.timestamps, "retry_doubtful": self.retry_doubtful, "window_s": self.window_s}
        return {name: value for name, value in chosen.items() if value != _ENGINE_DEFAULTS[name]}
