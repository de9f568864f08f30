"""The agent's LLM path against the real vLLM server, without audio (LiveKit's text mode): the
session's own LLM plugin and agent (`build_llm`, `HalfsecAgent`), a tool run end to end, and a
barge-in aborting the generation at the server."""

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from livekit.agents import AgentSession, llm
from livekit.agents.voice.agent_session import SessionConnectOptions

from agent.session import HalfsecAgent, build_llm, llm_conn_options
from agent.tools import agent_tools, spoken_time
from agent.tracing import CallTracer
from services.llm.health import LlmHealth

from .vllm_metrics import GENERATED, RUNNING, vllm_metrics, wait_for


def test_spoken_time_reads_out_in_the_configured_zone():
    moment = datetime(2026, 11, 22, 15, 4, tzinfo=ZoneInfo("Europe/London"))
    assert spoken_time(moment) == "3:04 PM on Sunday, 22 November 2026 (Europe/London time)"
    assert spoken_time(moment.replace(hour=0)).startswith("12:04 AM on Sunday")


async def test_the_current_time_tool_uses_the_settings_zone(settings):
    seen: list[ZoneInfo] = []

    def clock(zone: ZoneInfo) -> datetime:
        seen.append(zone)
        return datetime(2026, 1, 2, 9, 30, tzinfo=zone)

    assert agent_tools(settings) == []  # the cpu profile's 135M model is not offered tools
    tokyo = with_tools(settings, timezone="Asia/Tokyo")
    (tool,) = agent_tools(tokyo, clock)
    assert tool.info.name == "current_time"
    assert await tool() == "9:30 AM on Friday, 2 January 2026 (Asia/Tokyo time)"
    assert seen == [ZoneInfo("Asia/Tokyo")]
    no_parser = tokyo.model_copy(update={"llm": settings.llm.model_copy(update={"tool_call_parser": None})})
    assert agent_tools(no_parser) == []  # vLLM would refuse a request with tools


def test_an_unknown_time_zone_is_refused_naming_the_key(monkeypatch):
    from configs import SettingsError, load_settings

    monkeypatch.setenv("HALFSEC_TOOLS__TIMEZONE", "Mars/Olympus")
    with pytest.raises(
        SettingsError, match=r"tools.timezone: .*unknown time zone 'Mars/Olympus'.*HALFSEC_TOOLS__TIMEZONE"
    ):
        load_settings("cpu")


def with_tools(settings, **tools):
    """The settings with the agent's tools offered (the cpu profile offers none in normal turns)."""
    return settings.model_copy(update={"tools": settings.tools.model_copy(update={"enabled": True, **tools})})


async def text_session(settings, probe: bool = False, **llm_options):
    """The call's agent and LLM in an AgentSession with no audio in or out; `probe`: the agent
    asks the LLM server's /health when a first token is late (close it: `aclose_clients`)."""
    tracer = CallTracer("test", lambda record: None)
    session = AgentSession(
        llm=build_llm(settings, **llm_options),
        conn_options=SessionConnectOptions(llm_conn_options=llm_conn_options(settings)),
    )
    health = LlmHealth(settings.llm.server_url) if probe else None
    agent = HalfsecAgent(settings, tracer, clients=[], llm_health=health)
    await session.start(agent=agent)
    return session, agent


async def test_the_agent_runs_a_tool_and_answers_with_its_result(services, settings):
    """The first step is forced to call `current_time` (a 135M model picks tools unreliably); LiveKit
    runs our tool, sends its result back through our template, and the model answers in words.
    Greedy: at the profile's temperature (0.3) the 135M model sometimes pads the forced `{}` with
    whitespace, which the grammar allows, until max_tokens, and no call is parsed."""
    greedy = with_tools(settings).model_copy(update={"llm": settings.llm.model_copy(update={"temperature": 0.0})})
    session, agent = await text_session(greedy)
    answered = asyncio.Event()

    @session.on("conversation_item_added")
    def _on_item(ev) -> None:
        if isinstance(ev.item, llm.ChatMessage) and ev.item.role == "assistant" and ev.item.text_content:
            answered.set()

    try:
        session.generate_reply(
            user_input="What time is it?",
            tool_choice={"type": "function", "function": {"name": "current_time"}},
        )
        await asyncio.wait_for(answered.wait(), 60)
    finally:
        await session.aclose()
    items = session.history.items
    calls = [i for i in items if isinstance(i, llm.FunctionCall)]
    outputs = [i for i in items if isinstance(i, llm.FunctionCallOutput)]
    assert calls and calls[0].name == "current_time" and calls[0].arguments.strip() in ("{}", "")
    assert outputs and not outputs[0].is_error
    assert re.fullmatch(r"\d{1,2}:\d\d [AP]M on \w+day, .* \(UTC time\)", outputs[0].output), outputs[0].output
    reply = items[-1]
    assert isinstance(reply, llm.ChatMessage) and reply.role == "assistant"
    assert reply.text_content and reply.text_content != settings.llm.fallback_text  # no LLM error


async def test_barge_in_aborts_the_generation_at_the_server(services, settings):
    """An interrupted reply stops decoding in vLLM (LiveKit's plugin closes the HTTP stream when
    the reply task is cancelled), seen on vLLM's metrics, not only in the client."""
    long = settings.model_copy(update={"llm": settings.llm.model_copy(update={"max_tokens": 1500})})
    session, agent = await text_session(long, extra_body={"ignore_eos": True})  # runs on unless aborted
    url = settings.llm.local_url
    try:
        before = (await vllm_metrics(url))[GENERATED]
        session.generate_reply(user_input="Tell me a very long story about a lighthouse keeper.")
        await wait_for(url, RUNNING, lambda n: n == 1, timeout_s=10)
        await wait_for(url, GENERATED, lambda n: n >= before + 10, timeout_s=10)  # it is decoding
        await session.interrupt()
        _, took = await wait_for(url, RUNNING, lambda n: n == 0, timeout_s=2.0)
        stopped_at = (await vllm_metrics(url))[GENERATED]
        await asyncio.sleep(1.0)
        assert (await vllm_metrics(url))[GENERATED] == stopped_at  # nothing more decoded since
        assert stopped_at - before < 300, f"{stopped_at - before:g} tokens: it ran on"
        print(f"interrupt -> vLLM idle in {took * 1000:.0f} ms, {stopped_at - before:g} tokens generated")
    finally:
        await session.aclose()


@contextlib.asynccontextmanager
async def fake_llm_server(first_token_s: float, health: str) -> AsyncIterator[int]:
    """An OpenAI-compatible server on a free port whose replies' one token comes after
    `first_token_s` (hours: never); its /health answers 200 ("ok"), never ("hangs"), or is not
    there (anything else: 404)."""

    async def healthy(_: web.Request) -> web.Response:
        if health == "hangs":
            await asyncio.sleep(3600)
        return web.Response()

    async def complete(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(first_token_s)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for delta, finish in (({"role": "assistant", "content": "Late, but here."}, None), ({}, "stop")):
            chunk = {
                "id": "fake",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "fake",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    if health in ("ok", "hangs"):
        app.router.add_get("/health", healthy)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)  # hanging up ends `complete`
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()


async def reply_from(settings, port: int, first_token_timeout_s: float) -> tuple[str, float]:
    """One reply of the agent to "Hello?" from the LLM server at `port`: its text, and the
    seconds it took."""
    at_port = settings.model_copy(
        update={
            "llm": settings.llm.model_copy(
                update={"port": port, "timeout_s": 30.0, "first_token_timeout_s": first_token_timeout_s}
            )
        }
    )
    session, agent = await text_session(at_port, probe=True)
    answered = asyncio.Event()

    @session.on("conversation_item_added")
    def _on_item(ev) -> None:
        if isinstance(ev.item, llm.ChatMessage) and ev.item.role == "assistant":
            answered.set()

    t0 = asyncio.get_running_loop().time()
    try:
        session.generate_reply(user_input="Hello?")
        await asyncio.wait_for(answered.wait(), 20)
        return session.history.items[-1].text_content or "", asyncio.get_running_loop().time() - t0
    finally:
        await session.aclose()
        await agent.aclose_clients()


async def test_a_server_that_takes_the_request_and_never_answers_gets_the_fallback_in_time(settings):
    """A hung vLLM: the connection is accepted, no token ever comes, nor an answer to /health.
    The caller's apology must not wait for the whole request's timeout, only for the first
    token's."""
    async with fake_llm_server(3600, health="hangs") as port:
        text, waited = await reply_from(settings, port, first_token_timeout_s=1.0)
    assert text == settings.llm.fallback_text
    assert 1.0 <= waited < 3.0, waited  # the first-token deadline, not the 30 s request timeout


async def test_a_late_first_token_from_a_healthy_server_is_waited_for(settings):
    """Slow is not hung: vLLM on two cores shared with Whisper and Kokoro can be late with a
    first token while it says it is healthy. The caller gets the reply, not the apology."""
    async with fake_llm_server(2.0, health="ok") as port:
        text, waited = await reply_from(settings, port, first_token_timeout_s=1.0)
    assert text == "Late, but here." and 2.0 <= waited < 5.0, (text, waited)


async def test_a_late_first_token_from_a_server_that_cannot_say_gets_the_fallback(settings):
    async with fake_llm_server(2.0, health="none") as port:
        text, waited = await reply_from(settings, port, first_token_timeout_s=1.0)
    assert text == settings.llm.fallback_text and waited < 2.0, (text, waited)


async def test_a_reply_ends_at_its_sentences_and_so_does_the_request(services, settings):
    """With `llm.max_sentences`, the agent stops reading a reply that runs on (here forced to, by
    `ignore_eos`) once it has its sentences: the assistant message holds them and no more, and
    vLLM stops decoding for it, seen on its metrics."""
    o = settings.llm.model_copy(update={"max_tokens": 1500, "max_sentences": 2})
    session, agent = await text_session(settings.model_copy(update={"llm": o}), extra_body={"ignore_eos": True})
    url = settings.llm.local_url
    answered = asyncio.Event()

    @session.on("conversation_item_added")
    def _on_item(ev) -> None:
        if isinstance(ev.item, llm.ChatMessage) and ev.item.role == "assistant":
            answered.set()

    try:
        before = (await vllm_metrics(url))[GENERATED]
        session.generate_reply(user_input="Tell me a very long story about a lighthouse keeper.")
        await asyncio.wait_for(answered.wait(), 60)
        await wait_for(url, RUNNING, lambda n: n == 0, timeout_s=2.0)
        decoded = (await vllm_metrics(url))[GENERATED] - before
    finally:
        await session.aclose()
    reply = session.history.items[-1]
    assert isinstance(reply, llm.ChatMessage) and reply.role == "assistant"
    sentences = re.findall(r"[.!?](?:\s|$)", reply.text_content.strip())
    assert 1 <= len(sentences) <= 2, reply.text_content
    assert decoded < 400, f"{decoded:g} tokens decoded: the request ran on"
