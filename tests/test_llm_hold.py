"""halfsec's vLLM plugin (services/llm/vllm_plugin) on the real vLLM CPU server, and its client
(services/llm/hold.py): the worker no longer busy-waits after a request, and a hold stops
decoding until it is released or its lease runs out."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path

import aiohttp
import openai
import psutil
import pytest

from services.llm.hold import CALLER_HEADER, LlmHold

PLUGIN = Path(__file__).parent.parent / "services/llm/vllm_plugin/halfsec_vllm.py"


def plugin_module():
    """The plugin's module, loaded from its file: it is installed into vLLM's venv, not this one
    (its lease logic needs neither vLLM nor FastAPI)."""
    spec = importlib.util.spec_from_file_location("halfsec_vllm", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recorded_holds():
    """The plugin's holds on an engine that only records its pauses and resumes."""
    calls: list[str] = []

    async def pause() -> None:
        calls.append("pause")

    async def resume() -> None:
        calls.append("resume")

    return calls, plugin_module().Holds(pause, resume)


async def test_holds_pause_once_and_resume_when_the_last_is_released_or_expires():
    calls, holds = recorded_holds()
    await holds.hold("a", 5.0)
    await holds.hold("b", 5.0)  # a second call's first chunk: already paused
    assert calls == ["pause"] and holds.live == 2
    await holds.release("a")
    assert calls == ["pause"]  # "b" still holds
    await holds.release("b")
    assert calls == ["pause", "resume"] and holds.live == 0
    await holds.release("b")  # twice, or never held: nothing to do
    assert calls == ["pause", "resume"]

    await holds.hold("dead holder", 0.1)  # never released: its lease ends it
    await asyncio.sleep(0.25)
    assert calls == ["pause", "resume", "pause", "resume"] and holds.live == 0


async def test_a_hold_waits_while_another_callers_reply_has_no_first_audio():
    calls, holds = recorded_holds()
    b_reply = object()
    await holds.opened(b_reply, "b")  # caller b's reply is being decoded
    await holds.hold("a", 5.0, caller="a")  # a's first chunk: b's first sentence is not held up
    assert calls == [] and holds.opening == 1
    await holds.hold("b", 5.0, caller="b")  # b's first chunk too: now both hold
    assert calls == ["pause"] and holds.opening == 0
    a_next = object()
    await holds.opened(a_next, "a")  # a's next reply
    assert calls == ["pause", "resume"]
    holds.closed(a_next)  # it ended (the caller went on talking): the leases hold again
    await asyncio.sleep(0.05)
    assert calls == ["pause", "resume", "pause"]
    holds.closed(b_reply)  # ended after its hold: nothing changes
    await holds.opened(object(), None)  # a request naming no caller ends every hold
    assert calls == ["pause", "resume", "pause", "resume"] and holds.live == 0


def client(settings) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=settings.llm.client_base_url, api_key="x", max_retries=0)


async def stream_tokens(settings, n: int, arrivals: list[float], caller: str | None = None) -> int:
    """A reply of exactly `n` tokens, of `caller` if given; each content chunk's arrival time appended to
    `arrivals` and their count returned (vLLM may send two tokens in one chunk when a character spans them)."""
    stream = await client(settings).chat.completions.create(
        extra_headers={} if caller is None else {CALLER_HEADER: caller},
        model=settings.llm.served_model_name,
        messages=[{"role": "user", "content": "Tell me a long story about a lighthouse."}],
        max_tokens=n,
        stream=True,
        extra_body={"ignore_eos": True, "min_tokens": n},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
    return len(arrivals)


def vllm_worker() -> psutil.Process:
    workers = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "VLLM::Worker"]
    assert len(workers) == 1, workers
    return workers[0]


async def test_the_vllm_worker_sleeps_after_a_request(services, settings):
    # vLLM's own 1 s busy-wait kept a core at ~100 % after every request's last token
    assert settings.llm.busy_wait_s is not None
    worker = vllm_worker()
    await stream_tokens(settings, 4, [])
    before = worker.cpu_times()
    await asyncio.sleep(0.8)
    after = worker.cpu_times()
    busy = (after.user + after.system - before.user - before.system) / 0.8
    assert busy < 0.3, f"the worker used {busy:.0%} of a core after the request ended"


async def test_a_hold_stops_decoding_until_released(services, settings):
    hold = LlmHold(settings.llm.client_base_url, lease_s=3.0)
    arrivals: list[float] = []
    reply = asyncio.create_task(stream_tokens(settings, 40, arrivals))
    while len(arrivals) < 3:
        await asyncio.sleep(0.01)
    async with hold.holding():
        await asyncio.sleep(0.3)  # the hold lands after the step in flight (tens of ms)
        held_at = len(arrivals)
        await asyncio.sleep(0.8)
        during = len(arrivals) - held_at
    assert hold.held == 1
    assert during == 0, f"{during} tokens came while vLLM was held"
    assert await asyncio.wait_for(reply, 20) == 40  # it went on where it stopped
    await hold.aclose()


async def test_a_hold_nobody_releases_ends_with_its_lease(services, settings):
    async with aiohttp.ClientSession() as http:
        arrivals: list[float] = []
        reply = asyncio.create_task(stream_tokens(settings, 20, arrivals))
        while not arrivals:
            await asyncio.sleep(0.01)
        url = f"{settings.llm.client_base_url}/halfsec/hold"
        async with http.post(url, json={"id": "gone", "lease_s": 0.5}) as resp:
            assert resp.status == 200
        assert await asyncio.wait_for(reply, 20) == 20  # the holder died; vLLM did not stay paused


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", "body: Invalid JSON"),
        (b'{"lease_s": 1}', "id: Field required"),
        (b'{"id": "x", "lease_s": 60}', "lease_s: Input should be less than or equal to 5"),
    ],
)
async def test_a_bad_hold_request_is_refused_and_holds_nothing(services, settings, body, error):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{settings.llm.client_base_url}/halfsec/hold", data=body) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"].startswith(error)
    arrivals: list[float] = []
    assert await asyncio.wait_for(stream_tokens(settings, 5, arrivals), 10) in range(1, 6)


async def test_a_server_without_the_plugin_means_no_hold_and_no_error(services, settings):
    # services/asr answers 404 for the hold's path: the client stops asking, the block runs
    hold = LlmHold(settings.asr.client_url, lease_s=1.0)
    ran = []
    async with hold.holding():
        ran.append(1)
    async with hold.holding():
        ran.append(2)
    assert ran == [1, 2] and hold.held == 0
    await hold.aclose()


async def test_the_cores_bench_times_each_first_chunk_three_ways(services, settings):
    from agent.sim import cores

    figures = await cores.run_bench(
        settings.tts.client_url,
        settings.llm.client_base_url,
        settings.llm.served_model_name,
        ["Sure,", "Thanks for waiting."],
        lease_s=1.2,
        token=None,
    )
    assert figures["chunks"] == 2 and figures["holds_taken"] == 2  # every held chunk was held
    for mode in cores.MODES:
        assert 0 < figures[mode]["ttfa_ms_p50"] < 10_000


async def test_another_callers_request_ends_the_hold(services, settings):
    # a hold must not delay another call's first token: the agent fails a reply without one in 1.5 s
    hold = LlmHold(settings.llm.client_base_url, lease_s=3.0)
    async with hold.holding():
        await asyncio.sleep(0.2)  # held
        start = time.monotonic()
        arrivals: list[float] = []
        assert await asyncio.wait_for(stream_tokens(settings, 3, arrivals), 10) in range(1, 4)
        assert arrivals[0] - start < 1.0, "the new request waited for the hold's lease"
    await hold.aclose()


async def test_a_hold_waits_until_another_callers_reply_has_its_first_audio(services, settings):
    # a second call's first sentence is not decoded behind the first call's first chunk
    a = LlmHold(settings.llm.client_base_url, lease_s=3.0, caller="a")
    b = LlmHold(settings.llm.client_base_url, lease_s=3.0, caller="b")
    arrivals: list[float] = []
    reply = asyncio.create_task(stream_tokens(settings, 150, arrivals, caller="b"))
    while len(arrivals) < 3:
        await asyncio.sleep(0.01)
    async with a.holding():
        await asyncio.sleep(0.3)
        before = len(arrivals)
        await asyncio.sleep(0.5)
        assert len(arrivals) > before, "b's reply waited on a's hold before b had its first audio"
        async with b.holding():  # b's first chunk: both hold now
            await asyncio.sleep(0.3)
            held_at = len(arrivals)
            await asyncio.sleep(0.5)
            assert len(arrivals) == held_at, f"{len(arrivals) - held_at} tokens came while both held"
    assert a.held == b.held == 1
    released_at = len(arrivals)
    chunks = await asyncio.wait_for(reply, 30)
    assert chunks > released_at, "b's reply did not go on after the holds ended"
    assert 100 < chunks <= 150  # each token came, a few merged into one chunk
    await a.aclose()
    await b.aclose()
