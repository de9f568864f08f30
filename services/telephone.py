"""A telephone line: what a phone call does to the caller's voice before the agent hears it.

A call that reaches LiveKit through a SIP trunk is narrowband G.711 μ-law: 8000 samples a second
(nothing above ~3.8 kHz survives the rate change) and 8 bits a sample, companded so that the
quantisation noise follows the signal's level. LiveKit's SIP bridge decodes it and resamples it
for the room, so the agent hears full-rate frames that carry only the narrowband voice.

`through_line` does the same to mono int16 audio at any rate and hands it back at that rate,
sample-aligned (the resampler's filters are centred: nothing is delayed), so a caller fed through
it is heard exactly when they spoke. The rate changes are services/audio.py's (libsoxr), the
codec the standard G.711 tables of `audioop` (the stdlib module up to Python 3.12; `audioop-lts`
provides it from 3.13). No PSTN channel filter (G.712's 300-3400 Hz band) is applied: a SIP
trunk carrying G.711 end to end passes what the 8 kHz rate allows.

Used by the simulated caller (`halfsec demo --telephone`) and the ASR bench (`halfsec bench asr
--telephone`), which is why it lives here and not in `agent`.
"""

from __future__ import annotations

import warnings

import numpy as np

from .audio import resample

with warnings.catch_warnings():
    # deprecated in the stdlib since 3.11 and gone in 3.13 (where audioop-lts is installed instead);
    # the codec itself is the same G.711 table either way
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

RATE = 8000  # G.711's sample rate
WIDTH = 2  # bytes per linear sample (int16)


def ulaw_encode(pcm: np.ndarray) -> bytes:
    """Mono int16 -> G.711 μ-law, one byte a sample."""
    return audioop.lin2ulaw(pcm.astype(np.int16).tobytes(), WIDTH)


def ulaw_decode(ulaw: bytes) -> np.ndarray:
    """G.711 μ-law bytes -> mono int16."""
    return np.frombuffer(audioop.ulaw2lin(ulaw, WIDTH), dtype=np.int16)


def through_line(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Mono int16 `pcm` at `rate` as it comes out of a G.711 μ-law call: down to 8 kHz, encoded,
    decoded, back up to `rate`; the same length, on the same sample clock."""
    if len(pcm) == 0:
        return pcm
    heard = resample(ulaw_decode(ulaw_encode(resample(pcm, rate, RATE))), RATE, rate)
    # a rate round trip can end a sample short or long: the line neither adds nor drops time
    return np.pad(heard[: len(pcm)], (0, max(0, len(pcm) - len(heard))))
