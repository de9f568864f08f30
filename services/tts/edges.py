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
MARGIN_S = 0.02  # quiet kept next to the speech, so soft onsets and decays are never cut


def fit_edges(audio: np.ndarray, rate: int, text: str) -> np.ndarray:
    """`audio` (float32, mono) from its first sound less MARGIN_S to its last sound plus
    MARGIN_S, then the pause `text` ends with, as silence. All-quiet audio is returned as is."""
    frame = max(1, int(rate * FRAME_S))
    usable = len(audio) // frame * frame
    if usable == 0:
        return audio
    loudness = np.sqrt((audio[:usable].reshape(-1, frame).astype(np.float64) ** 2).mean(axis=1))
    loud = np.flatnonzero(loudness > loudness.max() * 10 ** (QUIET_DB / 20))
    if len(loud) == 0:  # all silence
        return audio
    margin = int(rate * MARGIN_S)
    start = max(0, loud[0] * frame - margin)
    end = min(len(audio), (loud[-1] + 1) * frame + margin)
    pause = np.zeros(int(rate * pause_after(text)), dtype=audio.dtype)
    return np.concatenate([audio[start:end], pause])
