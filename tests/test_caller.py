import numpy as np
import pytest
import soundfile as sf

from agent.caller import ROOM_RATE, last_voiced_sample, load_speech


def test_last_voiced_sample_ignores_trailing_noise():
    rate = 16000
    rng = np.random.default_rng(0)
    tone = (8000 * np.sin(np.arange(rate) * 2 * np.pi * 220 / rate)).astype(np.int16)
    hiss = rng.normal(0, 30, rate // 2).astype(np.int16)  # ~-48 dB below the tone
    pcm = np.concatenate([hiss, tone, hiss])
    assert abs(last_voiced_sample(pcm, rate) - (rate // 2 + rate)) <= rate // 100


def test_load_speech_resamples_to_room_rate(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(16000, np.int16), 16000)
    assert abs(len(load_speech(path)) - ROOM_RATE) < 500


def test_load_speech_rejects_bad_files(tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio")
    with pytest.raises(ValueError, match="not a readable audio file"):
        load_speech(junk)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.int16), 16000)
    with pytest.raises(ValueError, match="no audio samples"):
        load_speech(empty)
