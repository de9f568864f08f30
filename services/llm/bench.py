"""`halfsec bench llm`: what the LLM service gives a voice turn, alone and under concurrent calls.

At each concurrency level, that many callers each send `requests` chat requests one after the
other (each a different question after the same system prompt, as calls share it) and stream the
replies: time to first token, time to the first sentence end (what the first spoken chunk waits
for), decode tokens/s per stream, and the level's total tokens/s. Replies run to `max_tokens`
(vLLM's `ignore_eos`) so every level decodes the same amount. Then one conversation grows for
`turns` turns: with the prefix cache, the last turn's time to first token should stay near the
first one's although its prompt is several times longer.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

from openai import AsyncOpenAI
from rich.console import Console
from rich.table import Table

from latency.summary import percentile

from . import FIRST_SENTENCE, sentence_ends

QUESTIONS = [
    "Hi, I'd like to move my dentist appointment from Tuesday to Thursday. Is that possible?",
    "What are your opening hours on the weekend?",
    "Can you tell me how long delivery takes to Leeds?",
    "My internet has been dropping out every evening this week. What should I try first?",
    "I was charged twice for the same order. How do I get the second charge refunded?",
    "Do you have any tables for four free tonight around eight?",
    "How do I reset the password on my account?",
    "Is there parking near your office, and is it free?",
    "I need to cancel my subscription. What happens to the months I already paid for?",
    "Could you explain the difference between the basic and the premium plan?",
    "My parcel says delivered but it isn't here. What can I do?",
    "Can I bring my dog to the hotel, and does it cost extra?",
]


@dataclass
class Reply:
    text: str
    ttft_ms: float | None  # request sent -> first content token
    first_sentence_ms: float | None  # request sent -> first sentence end in the text
    tokens: int  # completion tokens (the server's usage count when it sends one)
    decode_s: float  # first token -> last token
    prompt_tokens: int | None = None
    cached_tokens: int | None = None  # prompt tokens served from the prefix cache, if reported
    finish_reason: str | None = None  # "length": the reply ran into max_tokens

    @property
    def tokens_per_s(self) -> float | None:
        return (self.tokens - 1) / self.decode_s if self.tokens > 1 and self.decode_s > 0 else None


async def stream_reply(
    client: AsyncOpenAI,
    model: str,
    messages: list[dict[str, str]],
    *,
    max_tokens: int,
    temperature: float,
    fixed_length: bool,
    sampling: dict[str, float] | None = None,
) -> Reply:
    t0 = time.perf_counter()
    stream = await client.chat.completions.create(
        model=model,
        messages=messages,  # type: ignore[arg-type]
        max_tokens=max_tokens,
        temperature=temperature,
        stream=True,
        stream_options={"include_usage": True},
        extra_body=(sampling or {}) | ({"ignore_eos": True} if fixed_length else {}),
    )
    text, chunks = "", 0
    first = sentence = last = None
    usage: Any = None
    finish = None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
        delta = chunk.choices[0].delta.content if chunk.choices else None
        if not delta:
            continue
        now = time.perf_counter()
        first = first or now
        last, chunks = now, chunks + 1
        text += delta
        if sentence is None and FIRST_SENTENCE.search(text):
            sentence = now

    def ms(t: float | None) -> float | None:
        return None if t is None else (t - t0) * 1000

    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    return Reply(
        text=text,
        ttft_ms=ms(first),
        first_sentence_ms=ms(sentence),
        tokens=usage.completion_tokens if usage else chunks,
        decode_s=(last - first) if first and last else 0.0,
        prompt_tokens=usage.prompt_tokens if usage else None,
        cached_tokens=getattr(details, "cached_tokens", None),
        finish_reason=finish,
    )


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _pct(values: list[float | None], q: float) -> float | None:
    return _ms(percentile([v for v in values if v is not None], q))


async def bench_level(
    client: AsyncOpenAI,
    model: str,
    system_prompt: str,
    *,
    concurrency: int,
    requests: int,
    max_tokens: int,
    temperature: float,
) -> dict[str, Any]:
    async def caller(index: int) -> list[Reply]:
        replies = []
        for r in range(requests):
            question = QUESTIONS[(index * requests + r) % len(QUESTIONS)]
            messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": question}]
            replies.append(
                await stream_reply(
                    client, model, messages, max_tokens=max_tokens, temperature=temperature, fixed_length=True
                )
            )
        return replies

    t0 = time.perf_counter()
    replies = [r for rs in await asyncio.gather(*(caller(i) for i in range(concurrency))) for r in rs]
    wall_s = time.perf_counter() - t0
    ttft = [r.ttft_ms for r in replies]
    return {
        "concurrency": concurrency,
        "requests": len(replies),
        "ttft_ms_p50": _pct(ttft, 50),
        "ttft_ms_p95": _pct(ttft, 95),
        "first_sentence_ms_p50": _pct([r.first_sentence_ms for r in replies], 50),
        "first_sentence_ms_p95": _pct([r.first_sentence_ms for r in replies], 95),
        "tokens_per_s_per_stream": _pct([r.tokens_per_s for r in replies], 50),  # median stream
        "tokens_per_s": round(sum(r.tokens for r in replies) / wall_s, 1),  # all streams together
    }


async def bench_conversation(
    client: AsyncOpenAI,
    model: str,
    system_prompt: str,
    *,
    turns: int,
    max_tokens: int,
    temperature: float,
    sampling: dict[str, float] | None = None,
) -> list[Reply]:
    """One call growing turn by turn; each turn's prompt is the previous one plus two messages."""
    messages = [{"role": "system", "content": system_prompt}]
    replies = []
    for n in range(turns):
        messages.append({"role": "user", "content": QUESTIONS[n % len(QUESTIONS)]})
        reply = await stream_reply(
            client,
            model,
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            fixed_length=False,
            sampling=sampling,
        )
        replies.append(reply)
        messages.append({"role": "assistant", "content": reply.text})
    return replies


def reply_shape(replies: list[Reply], max_tokens: int) -> dict[str, Any]:
    """What the caller would be read: sentences per reply (by the agent's rule, services/llm), the
    share of replies that say a sentence twice, and the share cut off by `max_tokens`."""
    counts, repeated = [], 0
    for reply in replies:
        ends = sentence_ends(reply.text)
        sentences = [reply.text[a:b] for a, b in zip([0, *ends], ends, strict=False)]
        if reply.text[ends[-1] if ends else 0 :].strip():
            sentences.append(reply.text[ends[-1] if ends else 0 :])
        words = [" ".join(re.findall(r"\w+", s.lower())) for s in sentences]
        counts.append(len(sentences))
        repeated += len(set(words)) < len(words)
    n = len(replies)
    return {
        "replies": n,
        "sentences_p50": percentile(counts, 50),
        "sentences_max": max(counts),
        "repeated_sentence_rate": round(repeated / n, 3),
        "max_tokens_rate": round(sum(r.finish_reason == "length" for r in replies) / n, 3),
        "max_tokens": max_tokens,
        "tokens_p50": percentile([r.tokens for r in replies], 50),
    }


async def bench_replies(
    client: AsyncOpenAI,
    model: str,
    system_prompt: str,
    *,
    max_tokens: int,
    temperature: float,
    sampling: dict[str, float] | None,
) -> dict[str, Any]:
    """Every question once, alone, as a first turn: the replies as the model ends them."""
    replies = [
        await stream_reply(
            client,
            model,
            [{"role": "system", "content": system_prompt}, {"role": "user", "content": q}],
            max_tokens=max_tokens,
            temperature=temperature,
            fixed_length=False,
            sampling=sampling,
        )
        for q in QUESTIONS
    ]
    return reply_shape(replies, max_tokens)


async def run_bench(
    base_url: str,
    model: str,
    system_prompt: str,
    *,
    concurrency: list[int],
    turns: int,
    requests: int = 3,
    max_tokens: int = 120,
    temperature: float = 0.3,
    token: str | None = None,
    sampling: dict[str, float] | None = None,
) -> dict[str, Any]:
    if not concurrency or min(concurrency) < 1 or turns < 1 or requests < 1:
        raise ValueError("concurrency levels, turns and requests must be positive")
    client = AsyncOpenAI(base_url=f"{base_url}/v1", api_key=token or "halfsec-local", max_retries=0)
    try:
        # a first request pays for warm-up (CUDA graphs, allocator); keep it out of the figures
        await stream_reply(
            client,
            model,
            [{"role": "user", "content": "Hello."}],
            max_tokens=8,
            temperature=temperature,
            fixed_length=True,
        )
        levels = {}
        for c in concurrency:
            levels[str(c)] = await bench_level(
                client,
                model,
                system_prompt,
                concurrency=c,
                requests=requests,
                max_tokens=max_tokens,
                temperature=temperature,
            )
        talk = await bench_conversation(
            client,
            model,
            system_prompt,
            turns=turns,
            max_tokens=max_tokens,
            temperature=temperature,
            sampling=sampling,
        )
        shape = await bench_replies(
            client, model, system_prompt, max_tokens=max_tokens, temperature=temperature, sampling=sampling
        )
    finally:
        await client.close()
    return {
        "levels": levels,
        "turns": turns,
        "ttft_turn1_ms": _ms(talk[0].ttft_ms),
        "ttft_turnN_ms": _ms(talk[-1].ttft_ms),
        "prompt_tokens_turn1": talk[0].prompt_tokens,
        "prompt_tokens_turnN": talk[-1].prompt_tokens,
        "cached_tokens_turnN": talk[-1].cached_tokens,  # None unless vLLM reports prompt details
        "ttft_ms_by_turn": [_ms(r.ttft_ms) for r in talk],
        "reply_shape": shape,
        "sampling": sampling or {},
    }


def render(figures: dict[str, Any], title: str, out: Console) -> None:
    """The table `halfsec bench llm` prints, and the prefix cache's effect on one conversation."""
    table = Table(title=title)
    for name in (
        "calls",
        "requests",
        "TTFT P50 ms",
        "TTFT P95 ms",
        "1st sentence P50 ms",
        "1st sentence P95 ms",
        "tok/s per stream",
        "tok/s total",
    ):
        table.add_column(name, justify="right")
    for level in figures["levels"].values():
        table.add_row(
            *(
                str(level[k])
                for k in (
                    "concurrency",
                    "requests",
                    "ttft_ms_p50",
                    "ttft_ms_p95",
                    "first_sentence_ms_p50",
                    "first_sentence_ms_p95",
                    "tokens_per_s_per_stream",
                    "tokens_per_s",
                )
            )
        )
    out.print(table)
    cached = figures["cached_tokens_turnN"]
    out.print(
        f"one conversation, {figures['turns']} turns: TTFT turn 1 {figures['ttft_turn1_ms']} ms "
        f"({figures['prompt_tokens_turn1']} prompt tokens), turn {figures['turns']} "
        f"{figures['ttft_turnN_ms']} ms ({figures['prompt_tokens_turnN']} prompt tokens"
        + (f", {cached} cached)" if cached is not None else ")"),
        highlight=False,
    )
    shape = figures["reply_shape"]
    out.print(
        f"replies as the model ends them ({shape['replies']} questions, {figures['sampling']}): "
        f"sentences P50 {shape['sentences_p50']} (max {shape['sentences_max']}), "
        f"{shape['repeated_sentence_rate']:.0%} say a sentence twice, "
        f"{shape['max_tokens_rate']:.0%} cut off at max_tokens ({shape['max_tokens']}), "
        f"tokens P50 {shape['tokens_p50']}",
        highlight=False,
    )
