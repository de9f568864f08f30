"""The telephone line (services/telephone.py) is a real G.711 μ-law call at 8 kHz: 8 bits a
sample, companded (the noise follows the level, unlike 8-bit linear), the band above 4 kHz gone,
and not a sample of time added or lost."""

import numpy as np
import pytest

from services.telephone import RATE, through_line, ulaw_decode, ulaw_encode


def tone(hz: float, rate: int, dbfs: float = -20.0, seconds: float = 1.0) -> np.ndarray:
    n = int(seconds * rate)
    return (32767 * 10 ** (dbfs / 20) * np.sin(2 * np.pi * hz * np.arange(n) / rate)).astype(np.int16)


def snr_db(clean: np.ndarray, heard: np.ndarray) -> float:
    error = heard.astype(np.float64) - clean
    return float(10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(error**2)))


def level_db(pcm: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) / 32767 + 1e-12))


def test_one_byte_a_sample_and_the_g711_code_points():
    x = np.array([0, 32767, -32768], np.int16)
    assert len(ulaw_encode(x)) == len(x)
    # G.711: zero is 0xFF, full scale 0x80 / 0x00 (codes are sent inverted); the loudest code
    # decodes to 32124, the top of μ-law's last segment, and both zeros to 0
    assert ulaw_encode(x).hex() == "ff8000"
    assert ulaw_decode(bytes([0x80, 0x00, 0xFF, 0x7F])).tolist() == [32124, -32124, 0, 0]


@pytest.mark.parametrize("dbfs", [-10.0, -40.0])
def test_quantisation_is_8_bit_companded(dbfs):
    """A non-zero error at every level, yet ~35 dB below the signal at -10 and at -40 dBFS alike:
    μ-law's companding. 8-bit linear would be 40 dB at -10 dBFS but 11 dB at -40."""
    x = tone(1013, RATE, dbfs)  # not a divisor of the rate: every phase, many code points
    y = ulaw_decode(ulaw_encode(x))
    assert np.any(y != x)
    assert len(np.unique(y)) <= 256
    assert 30 < snr_db(x, y) < 42


@pytest.mark.parametrize("rate", [16000, 48000])
def test_voice_band_passes_and_its_noise_is_the_codecs(rate):
    x = tone(1013, rate)
    y = through_line(x, rate)
    assert 30 < snr_db(x[rate // 10 : -rate // 10], y[rate // 10 : -rate // 10]) < 42


@pytest.mark.parametrize("hz", [3950, 5000, 7000])
@pytest.mark.parametrize("rate", [16000, 48000])
def test_the_band_above_4_khz_is_gone(rate, hz):
    """At 8 kHz nothing at or above the 4 kHz Nyquist frequency survives; the resampler
    keeps the voice up to ~3.7 kHz and has taken the rest away by 3.95 kHz."""
    x = tone(hz, rate)
    assert level_db(through_line(x, rate)[rate // 10 : -rate // 10]) < level_db(x) - 40


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
@pytest.mark.parametrize("n", [12345, 16001])
def test_length_and_timing_are_kept(rate, n):
    """Any length comes back as long; a burst stays where it was (the filters are centred)."""
    x = np.zeros(n, np.int16)
    burst = tone(1013, rate, seconds=0.05)
    at = n // 3
    x[at : at + len(burst)] = burst
    y = through_line(x, rate)
    assert len(y) == n and y.dtype == np.int16
    lag = int(np.argmax(np.correlate(y.astype(np.float64), burst.astype(np.float64), "valid")))
    assert lag == at
    assert len(through_line(np.zeros(0, np.int16), rate)) == 0
