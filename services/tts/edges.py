"""Where a piece's audio starts and ends: the silence Kokoro leaves at its edges, made to fit.

After kokoro-onnx's own trim, a piece still opens with 40-100 ms of silence and closes with
~0.1-0.25 s (measured on the cpu profile). At the start of a reply that opening silence is
latency the caller hears; between two chunks the closing and opening silences add up to ~0.3 s,
where the same comma inside one synthesis pauses 0.05-0.2 s. So each piece keeps a few ms of
quiet at its start, and at its end the pause its last punctuation asks for (text/punctuation.py:
kokoro-onnx's own, 0.25 s after a sentence, 0.1 s after a clause).
"""

from __future__ import annotations

import numpy as np

from .text.punctuation import pause_after

FRAME_S = 0.01
QUIET_DB = -40.0  # a 10 ms frame this far below the piece's loudest frame is silence
MARGIN_S = 0.02  # quiet kept after the speech, so soft decays are never cut
# Quiet kept before the first sound. It is all under -40 dB of the loudest frame, so the caller
# hears none of it, and at a reply's start every ms of it is latency. With 20 ms (the end's
# margin), a first piece's audio reaching the agent -> its first audible sample
# (`stages_ms.transport`) was 26-27 ms at the median in `bench compare`; with 5 ms, 10 ms.
LEAD_S = 0.005


class EdgeFitter:
    """The fit for audio that arrives in parts (a piece decoded in windows): `feed` returns what
    can be played now, `close` the rest. Quiet audio is held until a later sound shows whether it
    is inside the speech or after it, so the result is the whole piece's fit, except that "the
    loudest frame" is the loudest so far."""

    def __init__(self, rate: int, text: str) -> None:
        self._rate, self._text = rate, text
        self._frame = max(1, int(rate * FRAME_S))
        self._margin = int(rate * MARGIN_S)
        self._lead = int(rate * LEAD_S)
        self._pending = np.zeros(0, np.float32)  # starts on a frame boundary of the piece
        self._peak = 0.0
        self._started = False

    def feed(self, audio: np.ndarray) -> np.ndarray:
        self._pending = np.concatenate([self._pending, audio])
        frame = self._frame
        usable = len(self._pending) // frame * frame
        if usable == 0:
            return self._pending[:0]
        frames = self._pending[:usable].reshape(-1, frame).astype(np.float64)
        loudness = np.sqrt((frames**2).mean(axis=1))
        self._peak = max(self._peak, float(loudness.max()))
        loud = np.flatnonzero(loudness > self._peak * 10 ** (QUIET_DB / 20))
        if len(loud) == 0:
            return self._pending[:0]
        start = 0
        if not self._started:
            start, self._started = max(0, loud[0] * frame - self._lead), True
        end = (loud[-1] + 1) * frame
        out, self._pending = self._pending[start:end], self._pending[end:]
        return out

    def close(self) -> np.ndarray:
        """The margin after the last sound and the pause the text ends with; audio that never
        had a sound in it, as it came."""
        if not self._started:
            return self._pending
        pause = np.zeros(int(self._rate * pause_after(self._text)), dtype=self._pending.dtype)
        return np.concatenate([self._pending[: self._margin], pause])


def fit_edges(audio: np.ndarray, rate: int, text: str) -> np.ndarray:
    """`audio` (float32, mono) from its first sound less LEAD_S to its last sound plus
    MARGIN_S, then the pause `text` ends with, as silence. All-quiet audio is returned as is."""
    fitter = EdgeFitter(rate, text)
    return np.concatenate([fitter.feed(audio), fitter.close()])
