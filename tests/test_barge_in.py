"""The caller interrupts the agent on the real stack: the agent goes quiet at once, the services
stop the work in flight, and the records say what happened.

The reply is made long (200 tokens whatever the model would say, ~10 s of decoding here) so that
vLLM and the TTS are still busy with it when the caller cuts in 0.5 s after the agent began to
speak, and still when LiveKit drops it: it pauses the reply at once, and interrupts it only when
the caller's final transcript comes (`turn.resume_false_interruption`). Until then the paused
reply is still being written and synthesised, as LiveKit means it to be.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from agent.session import build_llm, build_session
from agent.sim.call import run_call
from agent.sim.speech import call_turns
from agent.sim.voice import ROOM_RATE, voice_span
from services.audio import read_pcm16
from services.tts.client import TtsClient
from tests.vllm_metrics import RUNNING, vllm_metrics


@dataclass
class Request:
    """One request of the agent's TTS plugin, as the plugin saw it."""

    text: str
    opens_reply: bool
    started: float
    ended: float | None = None
    whole: bool = False  # read to its end, not closed early


class RecordingTtsClient(TtsClient):
    """The agent's TTS client, noting when each request starts and how it ends."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.requests: list[Request] = []

    async def stream(self, text: str, **options: Any) -> AsyncIterator[tuple[int, bytes]]:
        if options.get("keep"):  # a prerendered phrase, no reply's
            async for part in super().stream(text, **options):
                yield part
            return
        request = Request(text, not options.get("continues"), time.monotonic())
        self.requests.append(request)
        try:
            async for part in super().stream(text, **options):
                yield part
            request.whole = True
        finally:
            request.ended = time.monotonic()

    def first_reply(self) -> list[Request]:
        """The requests of the call's first reply: up to the next that opens a reply."""
        opens = [i for i, r in enumerate(self.requests) if r.opens_reply]
        return self.requests[: opens[1]] if len(opens) > 1 else self.requests


async def test_barge_in_silences_the_agent_and_stops_the_services(services, settings, speech, tmp_path):
    # no sentence limit either: the reply must still be running when the caller cuts in
    long = settings.model_copy(
        update={"llm": settings.llm.model_copy(update={"max_tokens": 200, "max_sentences": None})}
    )
    files = [speech[0][0], call_turns(settings)[4]]  # a question, then "eight of spades ..." over the reply
    running: list[tuple[float, float]] = []  # (time, requests vLLM is decoding)
    barge_in: list[float] = []

    async def sample() -> None:
        while True:
            running.append((time.monotonic(), (await vllm_metrics(settings.llm.local_url))[RUNNING]))
            await asyncio.sleep(0.05)

    async def before_turn(n: int) -> None:
        if n == 2:
            barge_in.append(time.monotonic())  # the caller starts talking over the reply now

    agent_tts = RecordingTtsClient(settings.tts.client_url)
    sampler = asyncio.create_task(sample())
    # The second reply is as long: its record is written when we stop waiting (30 s), not when it
    # ends. Its first audio can take over 12 s here: vLLM decodes 200 tokens beside Kokoro.
    # ignore_eos: a reply of a sentence or two (the model's wont) could be written and synthesised
    # whole, paused, before the interruption lands (CI once: nothing was left to stop)
    call = await run_call(
        long,
        files,
        tmp_path,
        barge_in_at_s=0.5,
        reply_timeout_s=30,
        before_turn=before_turn,
        build=lambda s, tracer: build_session(
            s, tracer, tts_client=agent_tts, model=build_llm(s, extra_body={"ignore_eos": True})
        ),
    )
    sampler.cancel()

    first, second = call.voiced_turns()
    assert first["interrupted"] is True and first["invalid"] == []
    # the agent was silent within 300 ms of the caller's first voiced sample: traced, and heard.
    # Negative: its audio had already run dry (cpu profile: the reply's next decoder window not
    # yet made on the two busy cores, services/tts/windows.py) when the caller began.
    assert -1000 < first["agent_stopped_ms"] <= 300, first["agent_stopped_ms"]
    heard = call.measured[1].agent_stopped_ms
    # None: the recording heard the agent quiet for more than a pause before the caller began, as
    # when its playout was a piece's silent tail (7 Dec: traced +167 ms, the recording quiet for the
    # 445 ms before the caller, then 0.1 s of sound): nothing audible to stop, and the trace says
    # when playout stopped.
    assert heard is None or heard <= 300, heard
    # vLLM stopped decoding the interrupted reply when the next turn's began: never two at once
    # for more than a moment (one 100 ms sample).
    both = [t for t, n in running if n >= 2]
    assert len(both) <= 1, both
    assert max(n for _, n in running) >= 1  # the sampler saw the decoding at all
    # LiveKit pauses the reply when the caller starts, and interrupts it at their final
    # transcript: then the plugin closes the reply's request in flight (the service stops its
    # piece: test_tts_service.py) and asks for no more, though vLLM was still writing it (200
    # tokens). The final's mark is a few ms late on the audio's clock (requests closed by it
    # ended 0-20 ms before it here), hence the 0.5 s either side.
    lead = voice_span(read_pcm16(files[1], ROOM_RATE), ROOM_RATE)
    assert lead is not None
    lands = barge_in[0] + lead.first / ROOM_RATE + second["marks_ms"]["final_transcript"] / 1000
    assert any(n >= 1 for t, n in running if lands - 0.5 <= t <= lands), (lands, running)  # still writing
    replied = [(r, r.ended) for r in agent_tts.first_reply() if r.ended is not None]
    assert replied and len(replied) == len(agent_tts.first_reply()), agent_tts.requests
    assert all(ended < lands + 0.5 for _, ended in replied), (lands, replied)
    assert all(r.whole or ended > lands - 0.5 for r, ended in replied), (lands, replied)
    # the next turn is whole: its own reply, every invariant kept, the trace agreeing with the audio
    assert second["interrupted"] is False and second["invalid"] == [] and second["v2v_ms"] is not None
    assert second["speech_id"] != first["speech_id"] and "spades" in second["user_text"].lower()
    assert second["v2v_ms"] == pytest.approx(call.measured[1].v2v_ms, abs=1)
