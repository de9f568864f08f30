"""The agent's LLM path against the real vLLM server, without audio (LiveKit's text mode): the
session's own LLM plugin and agent (`build_llm`, `HalfsecAgent`), a tool run end to end, and a
barge-in aborting the generation at the server."""

import asyncio
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from livekit.agents import AgentSession, llm
from livekit.agents.voice.agent_session import SessionConnectOptions

from agent.session import HalfsecAgent, build_llm, llm_conn_options
from agent.tools import agent_tools, spoken_time
from agent.tracing import CallTracer

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


async def text_session(settings, **llm_options):
    """The call's agent and LLM in an AgentSession with no audio in or out."""
    tracer = CallTracer("test", lambda record: None)
    session = AgentSession(
        llm=build_llm(settings, **llm_options),
        conn_options=SessionConnectOptions(llm_conn_options=llm_conn_options(settings)),
    )
    agent = HalfsecAgent(settings, tracer, clients=[])
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


async def test_a_server_that_takes_the_request_and_never_answers_gets_the_fallback_in_time(settings):
    """A hung vLLM: the connection is accepted, no token ever comes. The caller's apology must
    not wait for the whole request's timeout, only for the first token's."""
    from aiohttp import web

    async def hang(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(3600)
        return web.Response()

    app = web.Application()
    app.router.add_post("/v1/chat/completions", hang)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)  # hanging up ends `hang`
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    hung = settings.model_copy(
        update={"llm": settings.llm.model_copy(update={"port": port, "timeout_s": 30.0, "first_token_timeout_s": 1.0})}
    )
    session, _ = await text_session(hung)
    answered = asyncio.Event()

    @session.on("conversation_item_added")
    def _on_item(ev) -> None:
        if isinstance(ev.item, llm.ChatMessage) and ev.item.role == "assistant":
            answered.set()

    t0 = asyncio.get_running_loop().time()
    try:
        session.generate_reply(user_input="Hello?")
        await asyncio.wait_for(answered.wait(), 20)
        waited = asyncio.get_running_loop().time() - t0
    finally:
        await session.aclose()
        await runner.cleanup()
    assert session.history.items[-1].text_content == settings.llm.fallback_text
    assert 1.0 <= waited < 3.0, waited  # the first-token deadline, not the 30 s request timeout
