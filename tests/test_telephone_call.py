"""`halfsec demo --telephone`: the simulated caller is heard through the 8 kHz μ-law line, while
their voice (and so the turn's v2v) is still timed on what they said."""

import contextlib
import functools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import agent.sim.call
import services.supervisor
from agent.cli import main
from agent.session import build_session
from agent.sim import devset
from agent.sim.call import CallResult, run_call
from agent.sim.caller import ROOM_RATE, CallRecorder, Utterance, by_telephone, load_turn
from agent.sim.voice import Voice, measure_call
from services.telephone import through_line
from tests.conftest import required
from tests.session_fakes import Reply, ScriptedAsr, ScriptedLLM, ScriptedTts, ScriptedVAD


def test_the_agent_hears_the_line_and_the_voice_is_the_callers(speech):
    said = load_turn(speech[1][0])
    heard = by_telephone(said)
    assert heard.pcm is said.pcm and heard.voice == said.voice  # what they said, and when
    # what the agent is fed: the line's output, the same every time (the resampler does not
    # dither), ~13 dB from what was said (the band above 4 kHz, the codec's noise)
    assert len(heard.fed) == len(said.pcm)
    assert np.array_equal(heard.fed, through_line(said.pcm, ROOM_RATE))
    assert snr_db(heard.fed, said.pcm) < 25
    assert heard.voice_at(960) == said.voice_at(960)  # on every grid of the stream


@pytest.mark.parametrize("stem", ["one-word--cv-no", "one-word--cv-six"])
def test_measure_agrees_with_the_trace_on_a_phone_call(settings, tmp_path, stem):
    """call.wav's caller channel holds the line's audio, as fed; `halfsec measure` still finds
    where each file landed and times its voice on the file itself, so it reads the v2v the
    trace's ground truth gives (the utterance's voice on the stream's grid): 700 ms here.
    These two files start with a quiet lead of +-1 that the line makes sound: placed by their
    first sounding sample, "no" landed 143 ms early and "six" 32 ms, and v2v read 828 and 732 ms."""
    required(settings, extra=devset.artifacts(settings))
    wav = settings.speech_dir / "dev" / f"{stem}.wav"
    utt = by_telephone(load_turn(wav))
    offset = 37 * ROOM_RATE // 50  # the caller's 38th 20 ms frame
    voice = utt.voice_at(offset)
    rec = CallRecorder()
    rec.add("caller", rec.t0 + offset / ROOM_RATE, utt.fed, ROOM_RATE)
    answer_at = (offset + voice.end) / ROOM_RATE + 0.7
    tone = (3000 * np.sin(np.arange(24000) * 2 * np.pi * 300 / 24000)).astype(np.int16)
    rec.add("agent", rec.t0 + answer_at, tone, 24000)
    rec.write(tmp_path / "call.wav")
    [turn] = measure_call(tmp_path / "call.wav", [wav])
    assert turn.v2v_ms == pytest.approx(700.0, abs=1.0)


def snr_db(a: np.ndarray, b: np.ndarray) -> float:
    error = max(float(np.mean((a.astype(np.float64) - b) ** 2)), 1e-9)  # the same twice: no error
    return float(10 * np.log10(np.mean(a.astype(np.float64) ** 2) / error))


def band_db(pcm: np.ndarray, rate: int, hz: float) -> float:
    """Level of the `hz` component (dB, arbitrary reference)."""
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    i = round(hz * len(pcm) / rate)
    return float(20 * np.log10(spectrum[i - 2 : i + 3].max() + 1e-9))


async def test_a_call_over_the_line(settings, tmp_path):
    """A scripted call (tests/session_fakes.py) whose caller says a 220 Hz tone with a 6 kHz one
    on top: the agent answers, and the caller channel of call.wav (what was fed) has the 220 Hz
    and not the 6 kHz, which an 8 kHz line cannot carry."""
    n = int(0.6 * ROOM_RATE)
    t = np.arange(n) / ROOM_RATE
    pcm = (4000 * np.sin(2 * np.pi * 220 * t) + 2000 * np.sin(2 * np.pi * 6000 * t)).astype(np.int16)
    utt = Utterance(Path("tones"), pcm, Voice(first=0, end=n, rate=ROOM_RATE), on_stream_grid=False)
    build = functools.partial(
        build_session,
        vad=ScriptedVAD(),
        asr=ScriptedAsr([["Hello?"]]),
        tts_client=ScriptedTts(),
        model=ScriptedLLM({"Hello?": Reply("Hi.")}),
    )
    call = await run_call(settings, [utt], tmp_path, reply_timeout_s=10.0, gap_s=0.3, build=build, telephone=True)
    [turn] = call.turns
    assert turn["user_text"] == "Hello?" and turn["v2v_ms"] is not None and turn["invalid"] == []
    audio, rate = sf.read(tmp_path / "call.wav", dtype="int16")
    caller = audio[:, 0]
    start = int(np.argmax(np.abs(caller) > 100))
    fed = caller[start + rate // 20 : start + rate // 2]  # inside the utterance
    sent = pcm[: len(pcm) // 2 * 2 : 3][rate // 20 : rate // 2]  # the same span of what was said, at 16 kHz
    assert band_db(fed, rate, 220) > band_db(sent, rate, 220) - 1  # the voice band came through
    assert band_db(sent, rate, 6000) > band_db(sent, rate, 220) - 10  # the 6 kHz was said ...
    assert band_db(fed, rate, 6000) < band_db(fed, rate, 220) - 40  # ... and not heard


def test_demo_passes_the_flag_to_the_call(monkeypatch, speech, tmp_path):
    """`halfsec demo --telephone` puts the call on the line; without the flag it is not."""
    calls: list[bool] = []

    async def call(settings, files, out, **options) -> CallResult:
        calls.append(options["telephone"])
        return CallResult("s", [], out, files, [])

    monkeypatch.setattr(agent.sim.call, "run_call", call)
    monkeypatch.setattr(services.supervisor, "supervisor", lambda *_: contextlib.AsyncExitStack())
    wav = str(speech[1][0])
    for flag in (["--telephone"], []):
        assert main(["demo", *flag, "--audio", wav, "--out", str(tmp_path)]) == 1  # no turns: exit 1
    assert calls == [True, False]
