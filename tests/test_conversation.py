"""The conversation sent to the LLM (history trimmed to the budget, prefix kept stable for vLLM's
cache) and the speakable text the TTS and the transcript get. Fakes only: no model, no server."""

from collections.abc import AsyncIterable

import pytest
from livekit.agents import Agent, llm

from agent.conversation import HistoryWindow, estimate_tokens, history_budget, token_counter
from agent.session import HalfsecAgent
from agent.tracing import CallTracer
from configs import load_settings
from services.tts.text.markup_stream import drop_list_markers, strip_markup

SYSTEM = "You are a friendly voice assistant on a phone call."


async def chunked(text: str, size: int) -> AsyncIterable[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


async def collect(stream: AsyncIterable[str]) -> str:
    return "".join([chunk async for chunk in stream])


MARKDOWN_REPLY = (
    "# Options\n**Sure!** Here are `two` ways 😀:\n1. Call [the desk](https://x.y/z) now.\n"
    "2) Or *email* us.\n• Or __visit__.\n- Bye 👋\n"
)
SPOKEN = "Options\nSure! Here are two ways :\nCall the desk now.\nOr email us.\nOr visit.\nBye \n"


@pytest.mark.parametrize("size", [1, 3, 7, 1000])  # however the LLM's deltas happen to split it
async def test_markdown_reply_becomes_speakable(size):
    assert await collect(strip_markup(chunked(MARKDOWN_REPLY, size))) == SPOKEN


@pytest.mark.parametrize(
    "text",
    ["100 people came.\n", "1.5 million, roughly.\n", "In 2024 we did step 3. Then\n", "7", "Snake_case and 5 * 3."],
)
async def test_numbers_that_are_not_list_markers_stay(text):
    assert await collect(strip_markup(chunked(text, 1))) == text


async def test_list_markers_go_even_indented_or_split():
    assert await collect(drop_list_markers(chunked("  3. Indented\n12) twelve", 1))) == "Indented\ntwelve"


def message(role: str, text: str) -> llm.ChatMessage:
    return llm.ChatMessage(role=role, content=[text])


def prompt(ctx: llm.ChatContext) -> list[tuple[str, str]]:
    """What the model is sent, as (role, text) pairs."""
    out = []
    for item in ctx.items:
        if isinstance(item, llm.ChatMessage):
            out.append((item.role, item.text_content or ""))
        else:
            out.append((item.type, getattr(item, "name", "")))
    return out


def test_history_under_budget_is_sent_whole():
    ctx = llm.ChatContext([message("system", SYSTEM), message("user", "Hi"), message("assistant", "Hello!")])
    assert prompt(HistoryWindow(1000).trim(ctx)) == prompt(ctx)


def test_oldest_whole_turns_go_first_and_the_system_prompt_stays():
    window = HistoryWindow(200)  # tokens; each turn below is ~58, the system prompt ~22
    items: list[llm.ChatItem] = [message("system", SYSTEM)]
    for n in range(6):
        items += [message("user", f"question {n} " + "x" * 60), message("assistant", f"answer {n} " + "y" * 60)]
    items.append(message("user", "the latest question"))
    kept = window.trim(llm.ChatContext(items))
    sent = prompt(kept)
    assert sent[0] == ("system", SYSTEM)
    assert sent[-1] == ("user", "the latest question")
    assert sum(window.cost(i) for i in kept.items) <= 200 * 0.6  # trimmed well under: see TRIM_TO
    # whole turns, newest first: question 5 with its answer, then the latest question
    assert [r for r, _ in sent] == ["system", "user", "assistant", "user"]
    assert sent[1][1].startswith("question 5") and sent[2][1].startswith("answer 5")


def test_a_tool_call_goes_with_its_turn():
    window = HistoryWindow(60)
    items = [
        message("system", SYSTEM),
        message("user", "what's the weather " + "z" * 80),
        llm.FunctionCall(call_id="c1", name="weather", arguments="{}"),
        llm.FunctionCallOutput(call_id="c1", name="weather", output="sunny " * 20, is_error=False),
        message("assistant", "It is sunny."),
        message("user", "thanks"),
    ]
    sent = prompt(window.trim(llm.ChatContext(items)))
    assert sent == [("system", SYSTEM), ("user", "thanks")]  # no orphaned call output


def test_the_last_turn_is_kept_even_when_alone_over_budget():
    window = HistoryWindow(10)
    ctx = llm.ChatContext([message("system", SYSTEM), message("user", "long " * 100)])
    assert prompt(window.trim(ctx)) == prompt(ctx)


def test_prefix_stays_stable_between_trims():
    """A growing call: each turn's prompt starts with the whole previous prompt (prefix-cache hit),
    except on the few turns where a trim drops several old turns at once."""
    window = HistoryWindow(400)
    history: list[llm.ChatItem] = [message("system", SYSTEM)]
    previous: list[tuple[str, str]] = []
    breaks = 0
    turns = 30
    for n in range(turns):
        history.append(message("user", f"turn {n}: " + "words " * 8))
        sent = prompt(window.trim(llm.ChatContext(list(history))))
        assert sent[0] == ("system", SYSTEM) and sent[-1][1].startswith(f"turn {n}:")
        assert sum(estimate_tokens(t) + 5 for _, t in sent) <= 400
        if sent[: len(previous)] != previous:
            breaks += 1
        history.append(message("assistant", f"reply {n}. " + "sure " * 10))
        previous = sent + [("assistant", history[-1].text_content)]
    # ~40 tokens a turn: the budget holds ~10 turns, so trimming a turn at a time would miss the
    # cache on every turn after the tenth (20 times); dropping to 60 % misses far less often
    assert 1 <= breaks <= 6


def test_history_budget_leaves_room_for_the_reply():
    s = load_settings("gpu-24gb")
    assert history_budget(s) == int((4096 - 120) * 0.95)


def test_token_counter_uses_a_local_tokenizer_or_says_it_estimates(tmp_path, monkeypatch):
    monkeypatch.setenv("HALFSEC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HALFSEC_LLM__MODEL", "no-such-model")
    count, how = token_counter(load_settings("cpu"))
    assert count is estimate_tokens and "estimate" in how
    monkeypatch.setenv("HALFSEC_LLM__MODEL", "hf:nobody/not-in-the-hub-cache")
    count, how = token_counter(load_settings("cpu"))
    assert count is estimate_tokens and "estimate" in how


def test_token_counter_reads_the_models_tokenizer_when_present():
    s = load_settings("cpu")
    count, how = token_counter(s)
    if "estimate" in how:
        pytest.skip("the cpu profile's model is not provisioned here (`halfsec models`)")
    assert how.startswith("tokenizer") and 0 < count("Hello there, how can I help you today?") < 20


async def test_agent_trims_the_history_it_sends_and_transcribes_speakable_text(monkeypatch):
    settings = load_settings("cpu")
    settings = settings.model_copy(
        update={"llm": settings.llm.model_copy(update={"max_model_len": 256, "max_tokens": 56})}
    )
    agent = HalfsecAgent(settings, CallTracer("s", lambda record: None), [])
    sent: list[llm.ChatContext] = []

    async def fake_llm_node(agent, chat_ctx, tools, model_settings):
        sent.append(chat_ctx)
        yield "**Fine**, thanks."

    monkeypatch.setattr(Agent.default, "llm_node", fake_llm_node)
    items: list[llm.ChatItem] = [message("system", settings.llm.system_prompt)]
    for n in range(20):
        items += [message("user", f"question {n} " + "x" * 40), message("assistant", "ok " * 10)]
    items.append(message("user", "and now?"))

    async def run() -> list[str]:
        return [c async for c in agent.llm_node(llm.ChatContext(items), [], None)]

    assert await run() == ["**Fine**, thanks."]
    assert prompt(sent[0])[0] == ("system", settings.llm.system_prompt)
    assert len(sent[0].items) < len(items) and prompt(sent[0])[-1] == ("user", "and now?")
    spoken = await collect(agent.transcription_node(chunked("**Fine**, thanks 🙂.", 2), None))
    assert spoken == "Fine, thanks ."
