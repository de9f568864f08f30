"""One simulated call of 3 turns through AgentSession, with every real model and service."""

import pytest
import soundfile as sf
from livekit import rtc

from agent.caller import measured_v2v_ms
from agent.demo import run_call
from agent.plugins.asr_stt import to_pcm16_mono
from latency import read_turns
from services.asr.client import AsrClient

RECORD_FIELDS = {"session_id", "turn", "user_text", "agent_text", "endpoint_ms", "stt_ms",
                 "llm_ttft_ms", "tts_ttfb_ms", "v2v_ms"}  # fmt: skip


@pytest.fixture(scope="module")
async def call(services, settings, speech, tmp_path_factory):
    out = tmp_path_factory.mktemp("call")
    return await run_call(settings, [wav for wav, _ in speech[:3]], out)


async def test_every_turn_is_answered_and_recorded(call):
    rows = list(read_turns(call.out_dir / "turns.jsonl"))
    assert rows == call.turns and len(rows) == 3
    for row in rows:
        assert RECORD_FIELDS <= set(row)
        missing = [k for k in RECORD_FIELDS if row[k] is None or row[k] == ""]
        assert not missing, (row["turn"], missing)
        assert 0 < row["endpoint_ms"] < 2000 and 0 < row["v2v_ms"] < 15000
        assert row["session_id"] == call.session_id


async def test_agent_audio_is_written_and_is_speech(call, settings, services):
    audio, rate = sf.read(call.out_dir / "agent.wav", dtype="int16")
    assert rate == 24000 and len(audio) / rate > 2.0
    first = audio[: rate * 6]  # Whisper reads back the start of what the agent said
    asr = AsrClient(settings.asr.url)
    heard = (await asr.transcribe(to_pcm16_mono(rtc.AudioFrame(first.tobytes(), rate, 1, len(first))))).text
    await asr.aclose()
    spoken = " ".join(t["agent_text"] for t in call.turns).lower()
    words = [w for w in heard.lower().replace(",", " ").replace(".", " ").split() if len(w) > 3]
    assert words and sum(w in spoken for w in words) / len(words) > 0.6, (heard, spoken[:200])


async def test_transcripts_match_what_the_caller_said(call, speech):
    assert "dashwood" in call.turns[0]["user_text"].lower()
    assert "young man" in call.turns[1]["user_text"].lower()


async def test_recorded_v2v_agrees_with_the_call_audio(call, speech):
    """The trace's v2v against an independent clock: where the audio sits in the call recording
    (the issue's bar: within 20 ms)."""
    measured = measured_v2v_ms(call.out_dir / "call.wav", [wav for wav, _ in speech[:3]])
    for row, ms in zip(call.turns, measured, strict=True):
        assert ms is not None and row["v2v_ms"] == pytest.approx(ms, abs=20), (row["turn"], row["v2v_ms"], ms)
