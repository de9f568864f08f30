"""The caller interrupts the agent on the real stack: the agent goes quiet at once, the services
stop the work in flight, and the records say what happened.

The reply is made long (200 tokens, ~10 s of decoding here) so that vLLM and the TTS are still
busy with it when the caller cuts in 0.5 s after the agent began to speak.
"""

import asyncio
import time

import pytest

from agent.sim.call import run_call
from agent.sim.speech import call_turns
from agent.sim.voice import ROOM_RATE, voice_span
from services.audio import read_pcm16
from services.tts.client import TtsClient
from tests.vllm_metrics import RUNNING, vllm_metrics


def stopped_pieces(health: dict) -> int:
    return health["pieces"]["stopped"] + health["pieces"]["dropped"]


async def test_barge_in_silences_the_agent_and_stops_the_services(services, settings, speech, tmp_path):
    # no sentence limit either: the reply must still be running when the caller cuts in
    long = settings.model_copy(
        update={"llm": settings.llm.model_copy(update={"max_tokens": 200, "max_sentences": None})}
    )
    tts = TtsClient(settings.tts.client_url)
    before_tts = stopped_pieces(await tts.health())
    files = [speech[0][0], call_turns(settings)[4]]  # a question, then "eight of spades ..." over the reply
    running: list[tuple[float, float]] = []  # (time, requests vLLM is decoding)
    tts_busy: list[tuple[float, bool]] = []  # (time, the TTS has a piece queued or in hand)
    barge_in: list[float] = []

    async def sample() -> None:
        while True:
            running.append((time.monotonic(), (await vllm_metrics(settings.llm.local_url))[RUNNING]))
            health = await tts.health()
            tts_busy.append((time.monotonic(), health["waiting"] + health["running"] > 0))
            await asyncio.sleep(0.05)

    async def before_turn(n: int) -> None:
        if n == 2:
            barge_in.append(time.monotonic())  # the caller starts talking over the reply now

    sampler = asyncio.create_task(sample())
    # The second reply is as long: its record is written when we stop waiting (30 s), not when it
    # ends. Its first audio can take over 12 s here: vLLM decodes 200 tokens beside Kokoro.
    call = await run_call(long, files, tmp_path, barge_in_at_s=0.5, reply_timeout_s=30, before_turn=before_turn)
    sampler.cancel()
    after_tts = stopped_pieces(await tts.health())
    await tts.aclose()

    first, second = call.voiced_turns()
    assert first["interrupted"] is True and first["invalid"] == []
    # the agent was silent within 300 ms of the caller's first voiced sample: traced, and heard.
    # Negative: its audio had already run dry (cpu profile: the reply's next decoder window not
    # yet made on the two busy cores, services/tts/windows.py) when the caller began.
    assert -1000 < first["agent_stopped_ms"] <= 300, first["agent_stopped_ms"]
    heard = call.measured[1].agent_stopped_ms
    assert heard is not None and heard <= 300, heard
    # vLLM stopped decoding the interrupted reply when the next turn's began: never two at once
    # for more than a moment (one 100 ms sample). The TTS stopped or dropped its pieces.
    both = [t for t, n in running if n >= 2]
    assert len(both) <= 1, both
    assert max(n for _, n in running) >= 1  # the sampler saw the decoding at all
    # The TTS stops or drops what it has for the reply when the interruption lands. It may have
    # had nothing then: the reply's next chunk still being written by vLLM, on a busy box (the
    # full suite once). And a decoder window already running is not broken off: it ends, and the
    # piece with it if it was the last (a window's time is not measured here; the full suite once
    # saw the TTS busy for 0.3 s after the agent went quiet, then idle, nothing stopped). Busy for
    # 1.5 s after the agent went quiet, it must have stopped or dropped something. That moment is
    # the caller's first voiced sample plus agent_stopped_ms, not the start of their audio:
    # LiveKit interrupts only after some of their speech.
    lead = voice_span(read_pcm16(files[1], ROOM_RATE), ROOM_RATE)
    assert lead is not None
    quiet = barge_in[0] + lead.first / ROOM_RATE + first["agent_stopped_ms"] / 1000
    around = [busy for t, busy in tts_busy if quiet - 0.1 <= t <= quiet + 1.5]
    if around and all(around):
        assert after_tts > before_tts, (quiet, tts_busy)
    # the next turn is whole: its own reply, every invariant kept, the trace agreeing with the audio
    assert second["interrupted"] is False and second["invalid"] == [] and second["v2v_ms"] is not None
    assert second["speech_id"] != first["speech_id"] and "spades" in second["user_text"].lower()
    assert second["v2v_ms"] == pytest.approx(call.measured[1].v2v_ms, abs=1)
