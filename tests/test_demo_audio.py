"""Audio files a user hands to `halfsec demo --audio`: any channels, rate, level and length load
to mono 48 kHz int16 with the voice where the speech is; a file with no voice, or no audio, stops
the demo in one line before any service starts."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from agent.cli import main
from agent.sim.caller import ROOM_RATE, load_turn, load_utterance
from services.audio import resample

WINDOW_48K = 1536  # one Silero window (32 ms) at 48 kHz


@pytest.fixture(scope="module")
def young_man(speech) -> np.ndarray:
    """'He was not an ill disposed young man', 3 s at 16 kHz, as float in -1..1."""
    audio, rate = sf.read(speech[1][0], dtype="float64")
    assert rate == 16000
    return audio


def at(audio: np.ndarray, rate: int) -> np.ndarray:
    return resample((audio * 32767).astype(np.int16), 16000, rate).astype(np.float64) / 32768


# name -> (samples, file rate); each file is written as 16-bit PCM WAV
def variants(speech: np.ndarray, monologue: np.ndarray) -> dict[str, tuple[np.ndarray, int]]:
    rng = np.random.default_rng(0)
    return {
        "stereo": (np.stack([speech, 0.5 * speech], axis=1), 16000),
        "8 kHz": (at(speech, 8000), 8000),
        "96 kHz": (at(speech, 96000), 96000),
        "clipped": (np.clip(20 * speech, -1, 1), 16000),  # ~26 dB of gain, flat-topped
        "DC offset": (0.5 * speech + 0.4, 16000),  # 0.4 of full scale: as bad as it gets unclipped
        "pure silence": (np.zeros(2 * 16000), 16000),
        "white noise": (rng.uniform(-0.5, 0.5, 3 * 16000), 16000),
        "5-minute monologue": (np.resize(monologue, 300 * 16000), 16000),
    }


SPEECH = ["stereo", "8 kHz", "96 kHz", "clipped", "DC offset"]
NO_VOICE = ["pure silence", "white noise"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, speech, young_man) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("demo-audio")
    monologue = np.concatenate([sf.read(wav, dtype="float64")[0] for wav, _ in speech])
    paths = {}
    for name, (audio, rate) in variants(young_man, monologue).items():
        paths[name] = out / f"{name.replace(' ', '-')}.wav"
        sf.write(paths[name], audio, rate, subtype="PCM_16")
    return paths


@pytest.mark.parametrize("name", SPEECH)
def test_speech_in_any_shape_loads_with_its_voice(files, speech, name):
    clean = load_utterance(speech[1][0])
    utt = load_turn(files[name])
    assert utt.pcm.dtype == np.int16 and utt.pcm.ndim == 1 and utt.rate == ROOM_RATE
    assert abs(len(utt.pcm) - len(clean.pcm)) <= 48  # 1 ms of a resampler's edges
    # Silero's span within one 32 ms window of the clean file's at each end
    assert abs(utt.voice.first - clean.voice.first) <= WINDOW_48K, (utt.voice, clean.voice)
    assert abs(utt.voice.end - clean.voice.end) <= WINDOW_48K, (utt.voice, clean.voice)


@pytest.mark.parametrize("name", NO_VOICE)
def test_no_voice_is_none_and_no_turn(files, name):
    utt = load_utterance(files[name])
    assert utt.voice is None and len(utt.pcm) > 0
    with pytest.raises(ValueError, match="no voice in it"):
        load_turn(files[name])


def test_a_five_minute_monologue_is_one_long_voice(files, speech):
    utt = load_turn(files["5-minute monologue"])
    assert len(utt.pcm) == pytest.approx(300 * ROOM_RATE, abs=48)
    first = load_utterance(speech[0][0])  # the monologue opens with it
    assert utt.voice.first == first.voice.first
    assert utt.voice.end > 299 * ROOM_RATE


@pytest.mark.parametrize("name", [*NO_VOICE, "not audio"])
def test_demo_refuses_a_bad_file_in_one_line_before_starting(files, tmp_path, monkeypatch, capsys, name):
    path = files.get(name)
    if path is None:
        path = tmp_path / "notes.wav"
        path.write_text("these are my notes, not a recording\n")

    def no_services(*_: object, **__: object) -> None:
        raise AssertionError("the services were started")

    monkeypatch.setattr("services.supervisor.supervisor", no_services)
    assert main(["demo", "--audio", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("halfsec: error:") and str(path.name) in err, err
    assert "\n" not in err and "Traceback" not in err
    assert ("no voice in it" if name in NO_VOICE else "not a readable audio file") in err
