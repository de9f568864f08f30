"""Where a piece's audio starts and ends: the silence Kokoro leaves at its edges, made to fit.

After kokoro-onnx's own trim, a piece still opens with 40-100 ms of silence and closes with
~0.1-0.25 s (measured on the cpu profile). At the start of a reply that opening silence is
latency the caller hears; between two chunks the closing and opening silences add up to ~0.3 s,
where the same comma inside one synthesis pauses 0.05-0.2 s. So each piece keeps a few ms of
quiet at its start, and at its end the pause its last punctuation asks for (kokoro-onnx's own
defaults: 0.25 s after a sentence, 0.1 s after a clause).
"""

from __future__ import annotations

import numpy as np

FRAME_S = 0.01
QUIET_DB = -40.0  # a 10 ms frame this far below the piece's loudest frame is silence
MARGIN_S = 0.02  # quiet kept next to the speech, so soft onsets and decays are never cut
SENTENCE_PAUSE_S = 0.25
CLAUSE_PAUSE_S = 0.1
_SENTENCE_MARKS = ".!?"
_CLAUSE_MARKS = ",;:\u2013\u2014"


def pause_after(text: str) -> float:
    """The pause the end of `text` asks for (closing quotes and brackets looked through)."""
    end = text.rstrip().rstrip("\"')]\u201d\u2019")[-1:]
    if end and end in _SENTENCE_MARKS:
        return SENTENCE_PAUSE_S
    if end and end in _CLAUSE_MARKS:
        return CLAUSE_PAUSE_S
    return 0.0


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
