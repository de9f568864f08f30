"""Audio in the shape every stage wants: mono 16-bit PCM at a given rate.

Rates are changed by LiveKit's resampler (the one the room's audio goes through), never by hand.
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
    from livekit import rtc

    resampler = rtc.AudioResampler(rate, to_rate, num_channels=1)
    frames = resampler.push(rtc.AudioFrame(pcm.astype(np.int16).tobytes(), rate, 1, len(pcm))) + resampler.flush()
    return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])


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
