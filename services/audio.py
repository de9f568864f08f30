"""Audio in the shape every stage wants: mono 16-bit PCM at a given rate.

Rates are changed by libsoxr (python-soxr), never by hand: the library LiveKit's own resampler
runs, at LiveKit's default medium quality, but in float and rounded once. LiveKit's int16 path
dithers, so the same file came out different by +-1-2 LSB in ~45 % of its samples from call to
call and thread to thread; that moved a marginal Silero window, and a call's ground truth
(agent/sim/voice.py) by 32 ms. Here the same samples in give the same samples out, and they are
within 1 LSB of LiveKit's, on the same timeline (no delay, same length).
Used by the simulated caller, the STT plugin and the benches; the services themselves take PCM
at their own rate and need none of this.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def resample(pcm: np.ndarray, rate: int, to_rate: int) -> np.ndarray:
    """Mono int16 `pcm` at `rate` -> mono int16 at `to_rate`."""
    if rate == to_rate or len(pcm) == 0:
        return pcm
    import soxr

    out = soxr.resample(pcm.astype(np.float32), rate, to_rate, quality="MQ")
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def read_pcm16(path: str | Path, rate: int) -> np.ndarray:
    """Any soundfile-readable file as mono int16 at `rate`; ValueError if it holds no usable audio."""
    import soundfile as sf

    try:
        data, file_rate = sf.read(str(path), dtype="int16", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise ValueError(f"{path}: not a readable audio file ({exc})") from None
    if data.size == 0:
        raise ValueError(f"{path}: no audio samples")
    return resample(data.mean(axis=1).astype(np.int16), file_rate, rate)
