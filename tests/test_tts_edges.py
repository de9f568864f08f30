"""A piece's audio edges: no silence before the first sound, and the pause its punctuation asks for."""

import numpy as np
import pytest

from services.tts.edges import LEAD_S, MARGIN_S, fit_edges
from services.tts.text.punctuation import CLAUSE_PAUSE_S, SENTENCE_PAUSE_S, pause_after

RATE = 24000


def tone(seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), np.float32)


@pytest.mark.parametrize(
    "text, pause",
    [
        ("Sure,", CLAUSE_PAUSE_S),
        ("Is that all?", SENTENCE_PAUSE_S),
        ('He said "done."', SENTENCE_PAUSE_S),
        ("two options: ", CLAUSE_PAUSE_S),
        ("and then", 0.0),
        ("", 0.0),
    ],
)
def test_the_pause_follows_the_last_punctuation(text, pause):
    assert pause_after(text) == pause


def test_silence_before_and_after_the_sound_is_fitted():
    audio = np.concatenate([silence(0.1), tone(0.5), silence(0.3)])
    fitted = fit_edges(audio, RATE, "Sure,")
    sound = np.flatnonzero(np.abs(fitted) > 0.01)
    assert sound[0] / RATE <= LEAD_S + 0.011  # one 10 ms frame of rounding at most
    trailing = (len(fitted) - sound[-1]) / RATE
    assert CLAUSE_PAUSE_S + MARGIN_S - 0.011 <= trailing <= CLAUSE_PAUSE_S + MARGIN_S + 0.011


def test_quiet_speech_is_kept_whole():
    """Only what is 40 dB under the loudest frame is silence: a soft onset survives."""
    audio = np.concatenate([silence(0.2), tone(0.1, amplitude=0.01), tone(0.4), silence(0.2)])
    fitted = fit_edges(audio, RATE, "")
    assert np.abs(fitted[: int(RATE * (LEAD_S + 0.1))]).max() > 0.005


@pytest.mark.parametrize("audio", [silence(0.3), np.zeros(0, np.float32), tone(0.004)])
def test_silent_or_tiny_audio_is_left_alone(audio):
    assert np.array_equal(fit_edges(audio, RATE, "Hi."), audio)
