"""The real vLLM (CPU build) server, serving SmolLM2-135M through its OpenAI API: streaming, a tool
call through the profile's parser, and a cancelled stream stopping at the server."""

import asyncio
import json

import openai
from livekit.agents import llm

from agent.tools import current_time_tool

from .vllm_metrics import GENERATED, RUNNING, vllm_metrics, wait_for


def client(settings) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{settings.llm.local_url}/v1", api_key="x", max_retries=0)


async def test_vllm_streams_a_reply(services, settings):
    oai = client(settings)
    stream = await oai.chat.completions.create(
        model=settings.llm.served_model_name,
        messages=[
            {"role": "system", "content": settings.llm.system_prompt},
            {"role": "user", "content": "Hello, what can you do for me?"},
        ],
        max_tokens=30,
        temperature=0,
        stream=True,
    )
    deltas = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
    await oai.close()
    assert len(deltas) > 3  # streamed token by token, not one blob
    assert any(ch.isalpha() for ch in "".join(deltas))


# A tool with an argument, so the arguments have something to get wrong. `strict` as LiveKit's
# OpenAI plugin sends every tool: vLLM then holds the arguments to the schema, not just the name.
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Today's weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


async def test_a_forced_tool_call_comes_back_parsed(services, settings):
    """A 135M model does not choose tools reliably, so the call is forced (tool_choice names it).
    vLLM 0.32 then constrains the output to the parser's own format (a structural tag for Hermes'
    <tool_call>, VLLM_ENFORCE_STRICT_TOOL_CALLING being on by default) and the hermes parser turns
    it into `tool_calls`. (Without a parser vLLM would force plain JSON instead; what the parser
    and our template are needed for is the model choosing a tool itself, and the turn after a
    call: tests/test_agent_llm.py.)"""
    oai = client(settings)
    ours = llm.ToolContext([current_time_tool("Europe/London")]).parse_function_tools("openai", strict=True)
    reply = await oai.chat.completions.create(
        model=settings.llm.served_model_name,
        messages=[
            {"role": "system", "content": settings.llm.system_prompt},
            {"role": "user", "content": "What's the weather like in Paris today?"},
        ],
        tools=[*ours, WEATHER],
        tool_choice={"type": "function", "function": {"name": "weather"}},
        max_tokens=40,
        temperature=0,
    )
    await oai.close()
    choice = reply.choices[0]
    assert choice.message.tool_calls, f"no tool call parsed; the model said {choice.message.content!r}"
    call = choice.message.tool_calls[0]
    assert call.function.name == "weather" and call.id
    args = json.loads(call.function.arguments)
    assert set(args) == {"city"} and isinstance(args["city"], str) and args["city"]
    assert not choice.message.content  # the <tool_call> markup is not left in the text


async def test_a_cancelled_stream_stops_generating_at_the_server(services, settings):
    """A caller who barges in closes the stream; vLLM must stop decoding then, not run on to
    max_tokens. Checked on vLLM's own metrics (running requests, tokens generated)."""
    url = settings.llm.local_url
    oai = client(settings)
    before = (await vllm_metrics(url))[GENERATED]
    stream = await oai.chat.completions.create(
        model=settings.llm.served_model_name,
        messages=[{"role": "user", "content": "Tell me a very long story about a lighthouse."}],
        max_tokens=1500,  # ~30 s of decoding here ...
        extra_body={"ignore_eos": True},  # ... which only an abort can cut short
        stream=True,
    )
    chunks = 0
    async for _ in stream:
        chunks += 1
        if chunks == 5:
            break
    assert (await vllm_metrics(url))[RUNNING] == 1  # still decoding though we stopped reading
    await stream.close()
    _, took = await wait_for(url, RUNNING, lambda n: n == 0, timeout_s=2.0)
    stopped_at = (await vllm_metrics(url))[GENERATED]
    await asyncio.sleep(1.0)
    await oai.close()
    assert (await vllm_metrics(url))[GENERATED] == stopped_at  # nothing more decoded since
    assert stopped_at - before < 150, f"{stopped_at - before:g} tokens for 5 read"
    print(f"stream closed -> vLLM idle in {took * 1000:.0f} ms, {stopped_at - before:g} tokens generated")
