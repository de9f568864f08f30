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

    async def sample() -> None:
        while True:
            running.append((time.monotonic(), (await vllm_metrics(settings.llm.local_url))[RUNNING]))
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample())
    # The second reply is as long: its record is written when we stop waiting (30 s), not when it
    # ends. Its first audio can take over 12 s here: vLLM decodes 200 tokens beside Kokoro.
    call = await run_call(long, files, tmp_path, barge_in_at_s=0.5, reply_timeout_s=30)
    sampler.cancel()
    after_tts = stopped_pieces(await tts.health())
    await tts.aclose()

    first, second = call.voiced_turns()
    assert first["interrupted"] is True and first["invalid"] == []
    # the agent was silent within 300 ms of the caller's first voiced sample: traced, and heard
    assert 0 < first["agent_stopped_ms"] <= 300, first["agent_stopped_ms"]
    heard = call.measured[1].agent_stopped_ms
    assert heard is not None and heard <= 300, heard
    # vLLM stopped decoding the interrupted reply when the next turn's began: never two at once
    # for more than a moment (one 100 ms sample). The TTS stopped or dropped its pieces.
    both = [t for t, n in running if n >= 2]
    assert len(both) <= 1, both
    assert max(n for _, n in running) >= 1  # the sampler saw the decoding at all
    assert after_tts > before_tts
    # the next turn is whole: its own reply, every invariant kept, the trace agreeing with the audio
    assert second["interrupted"] is False and second["invalid"] == [] and second["v2v_ms"] is not None
    assert second["speech_id"] != first["speech_id"] and "spades" in second["user_text"].lower()
    assert second["v2v_ms"] == pytest.approx(call.measured[1].v2v_ms, abs=30)
