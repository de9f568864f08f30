"""`halfsec bench cores`: what vLLM decoding beside Kokoro costs a reply's first audio on a box
where they share cores, and what holding vLLM (services/llm/hold.py) buys back.

Each reply's first chunk (cut by the agent's own chunker) goes to services/tts three ways, one
after the other so drift hits all alike: with vLLM idle; while vLLM decodes a long reply, as it
decodes a reply's later sentences in a call; and the same with vLLM held, as the agent holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import openai
from rich.console import Console
from rich.table import Table

from services.llm.hold import LlmHold
from services.tts.client import TtsClient

REPLIES_FILE = Path(__file__).with_name("compare_replies.txt")  # written for the compare bench, not tuned on
MODES = ("idle", "decoding", "held")
_DECODE_TOKENS = 80  # longer than any first chunk takes: vLLM is still decoding at its end


async def _first_audio_ms(tts: TtsClient, text: str) -> float:
    start = time.perf_counter()
    async with contextlib.aclosing(tts.stream(text)) as audio:
        async for _ in audio:
            return (time.perf_counter() - start) * 1000
    raise RuntimeError(f"no audio for {text!r}")


async def run_bench(
    tts_url: str, llm_api_url: str, model: str, firsts: list[str], *, lease_s: float, token: str | None
) -> dict:
    tts = TtsClient(tts_url, token=token)
    llm = openai.AsyncOpenAI(base_url=llm_api_url, api_key=token or "halfsec-local", max_retries=0)
    hold = LlmHold(llm_api_url, lease_s=lease_s, token=token)

    async def decode(started: asyncio.Event) -> None:
        stream = await llm.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}],
            max_tokens=_DECODE_TOKENS,
            stream=True,
            extra_body={"ignore_eos": True, "min_tokens": _DECODE_TOKENS},
        )
        async for _ in stream:
            started.set()

    async def once(mode: str, text: str) -> float:
        if mode == "idle":
            return await _first_audio_ms(tts, text)
        started = asyncio.Event()
        decoding = asyncio.create_task(decode(started))
        try:
            await asyncio.wait_for(started.wait(), 10)
            held = hold.holding() if mode == "held" else contextlib.nullcontext()
            async with held:
                return await _first_audio_ms(tts, text)
        finally:
            decoding.cancel()
            await asyncio.gather(decoding, return_exceptions=True)

    ttfa: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for text in firsts:
            for mode in MODES:
                ttfa[mode].append(await once(mode, text))
                await asyncio.sleep(0.3)  # the aborted request leaves vLLM
    finally:
        await tts.aclose()
        await llm.close()
        await hold.aclose()
    figures: dict = {"chunks": len(firsts), "holds_taken": hold.held}
    for mode, values in ttfa.items():
        figures[mode] = {
            "ttfa_ms_p50": round(statistics.median(values), 1),
            "ttfa_ms_p95": round(statistics.quantiles(values, n=20)[-1], 1) if len(values) > 1 else values[0],
            "ttfa_ms_mean": round(statistics.fmean(values), 1),
        }
    return figures


def first_chunks(replies: list[str], chunker: Callable[[str], list[str]]) -> list[str]:
    return [chunks[0] for reply in replies if (chunks := chunker(reply))]


def render(figures: dict, out: Console) -> None:
    table = Table(title=f"a reply's first audio, {figures['chunks']} first chunks, ms")
    for column in ("vLLM", "TTFA P50", "TTFA P95", "mean"):
        table.add_column(column, justify="right" if column != "vLLM" else "left")
    labels = {"idle": "idle", "decoding": "decoding beside it", "held": "held (the agent's rule)"}
    for mode in MODES:
        f = figures[mode]
        table.add_row(labels[mode], f"{f['ttfa_ms_p50']:.0f}", f"{f['ttfa_ms_p95']:.0f}", f"{f['ttfa_ms_mean']:.0f}")
    out.print(table)
    if figures["holds_taken"] < figures["chunks"]:
        out.print(f"[yellow]vLLM took {figures['holds_taken']} of {figures['chunks']} holds (its plugin missing?)[/]")
