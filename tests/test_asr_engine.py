"""services/asr's short-window decode, and the full-window retry that keeps it from losing words."""

import numpy as np
import pytest
import soundfile as sf

from services.asr.engine import WhisperEngine, doubtful
from services.audio import read_pcm16

TRICKY = "sense_and_sensibility_01_austen_64kb-0880"  # "He was not an ill-disposed young man"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("He was not an old-s-y-y-y-y-", True),  # stutter, broken off
        ("He was not an old-s-s-y young man?", True),  # stutter
        ("Unless to be rather...", False),  # trailing dots: a hesitation, as often as lost words
        ("Um...", False),
        ("I'll last to be r-", True),  # cut word
        ("Had he married a more amiable woman? Had he married a more", True),  # ran on, repeating
        ("He was not. He was not. He was", True),
        ("He was not an ill-disposed young man.", False),
        ("A well-to-do, forty-two-year-old man.", False),  # ordinary hyphens
        ("Had he married a more amiable woman he might have been made still more respectable.", False),
        ("", False),
    ],
)
def test_doubtful_decodes_are_told_apart(text, expected):
    assert doubtful(text) is expected


@pytest.fixture(scope="module")
def engine(settings):
    return WhisperEngine(settings)


def test_the_minimum_window_keeps_words_a_short_window_loses(engine, settings):
    """The sentence that came back as "He was not an old-s-y-y-y-y-" in a call: cut a little
    differently each time, as a stream cuts it. In a window of `asr.min_window_s` every quick
    decode keeps "young man"; in one just past the audio (1 s of padding) some lose it, and only
    the full-window retry of a doubtful decode brings it back."""
    audio, rate = sf.read(settings.speech_dir / "librivox" / f"{TRICKY}.wav", dtype="float32")
    assert rate == 16000
    voiced = np.nonzero(np.abs(audio) > 500 / 32768)[0]
    onset, offset = voiced[0], voiced[-1]
    cuts = [
        audio[max(0, start) : end]
        for start in range(onset - 4800, onset - 2000, 1024)
        for end in range(offset, offset + 3000, 1024)
    ]
    kept = [engine.decode(cut, retry_doubtful=False).text for cut in cuts]
    assert all("young man" in t.lower() for t in kept), kept
    short = settings.asr.model_copy(update={"min_window_s": 1.0})
    engine.opts = short
    try:
        lost = [t for cut in cuts if "young man" not in (t := engine.decode(cut, retry_doubtful=False).text.lower())]
        assert lost, "a short window kept every word: the minimum window may be needless"
        assert all("young man" in engine.decode(cut).text.lower() for cut in cuts)  # retried where doubtful
    finally:
        engine.opts = settings.asr


def test_a_short_word_the_silence_gate_drops_at_the_streaming_window_is_heard_over_the_rescue_window(engine, settings):
    """A one-word answer ("six") sits on the edge of Whisper's silence gate in a 10 s window:
    cut a little differently each time, as a stream cuts it, some decodes are dropped as no
    speech. The rescue's wider window (`asr.rescue_window_s`, cheaper than the full 30 s) hears
    every one of them."""
    audio = read_pcm16(settings.speech_dir / "dev" / "one-word--cv-six.wav", 16000).astype(np.float32) / 32768
    level = np.sqrt(np.convolve(audio**2, np.ones(320) / 320, "same"))
    voiced = np.flatnonzero(level > 0.02)
    cuts = [
        gain * audio[max(0, voiced[0] - int(pre * 16000)) : voiced[-1] + int(post * 16000)]
        for pre in (0.1, 0.2, 0.3, 0.4)
        for post in (0.03, 0.06, 0.1, 0.15)
        for gain in (1.0, 0.5)
    ]
    dropped = [cut for cut in cuts if engine.decode(cut, retry_doubtful=False).dropped == "no speech"]
    assert dropped, "no cut was dropped at the streaming window: the rescue is not shown to matter"
    rescued = [engine.decode(cut, window_s=settings.asr.rescue_window_s) for cut in dropped]
    assert all(r.text.strip(" .,").lower() in ("6", "six") and r.redecoded for r in rescued), [r.text for r in rescued]
