"""vLLM's own Prometheus figures, read from its /metrics: what the server is doing, not what a
client believes it is doing."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

RUNNING = "vllm:num_requests_running"
GENERATED = "vllm:generation_tokens_total"


async def vllm_metrics(url: str) -> dict[str, float]:
    """Each sample summed over engines; request counters keyed by finish reason too."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        resp.raise_for_status()
        text = await resp.text()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            reason = sample.labels.get("finished_reason")
            key = f"{sample.name}[{reason}]" if reason else sample.name
            out[key] = out.get(key, 0.0) + sample.value
    return out


async def wait_for(url: str, key: str, predicate, timeout_s: float) -> tuple[float, float]:
    """Poll until `predicate(value)`; (value, seconds it took). Raises TimeoutError with the last value."""
    t0 = time.monotonic()
    while True:
        value = (await vllm_metrics(url))[key]
        if predicate(value):
            return value, time.monotonic() - t0
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"{key} still {value} after {timeout_s:g}s")
        await asyncio.sleep(0.05)
