"""`halfsec bench soak`: callers calling back to back through the whole stack for M minutes, and
whether anything grows or breaks on the way.

The calls run in this process (`run_call`, N at once), so what a session leaves behind shows in
its RSS and open files, as it would in a long-lived job process. Every process of every service
(found by the port it listens on, then its process group: vLLM's API server and engine core)
is sampled too. The baseline is the sample after the first minute, once models, caches and
connection pools have warmed; growth is the last sample against it. Failed turns: no reply, or
a fallback; the turn log of each call must hold one record per utterance said.

LiveKit runs each call in a job process that ends with it; here calls follow each other in one
process, so the soak does what that exit does for the cyclic garbage a call leaves (LiveKit's
session objects are cyclic, and hold audio): it is collected as each call ends, not whenever
Python's oldest generation next is. Without that the agent's RSS climbed 260 -> 295 MB over
8 rounds of two calls; with it, 259 -> 266 (docs/reliability.md). What is still referenced, a
leak, is never collected, so it still shows. What is alive at the start (modules, the VAD) is
frozen first, as LiveKit's job processes do, so each collection scans only the calls' objects
(~10 ms, not ~150 ms of a stalled event loop for the other caller). Then the C heap's free pages
go back to the OS (`malloc_trim`), as that exit would also do: without it, the agent's RSS over a
10-minute soak grew +13.5 %; with it, -0.7 % (one run each). Leaked memory is not free: it stays.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import gc
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from configs import Settings

from ..session import build_vad
from .bench import REPLY_TIMEOUT_S, failed
from .call import run_call

log = logging.getLogger("halfsec.soak")

BASELINE_S = 60.0  # growth is measured from the first sample after this


@dataclass
class Sample:
    at_s: float
    rss: dict[str, int]  # process label -> bytes
    fds: dict[str, int]  # process label -> open file descriptors


@dataclass
class SoakResult:
    calls: int = 0
    turns: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    incomplete_logs: list[str] = field(default_factory=list)  # calls whose turns.jsonl lacks a turn
    samples: list[Sample] = field(default_factory=list)


def _service_processes(port: int) -> list[psutil.Process]:
    """Every process in the process group of whatever listens on `port`."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            group = os.getpgid(conn.pid)
            return [p for p in psutil.process_iter() if _pgid(p) == group]
    return []


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except (ProcessLookupError, PermissionError):
        return None


def watched_processes(settings: Settings) -> dict[str, psutil.Process]:
    """Label -> process: this one (the calls' sessions) and each service's."""
    found = {"agent": psutil.Process()}
    for name, address in (("asr", settings.asr), ("tts", settings.tts), ("llm", settings.llm)):
        for proc in _service_processes(address.port):
            found[f"{name}/{proc.name()}[{proc.pid}]"] = proc
    return found


def sample(procs: dict[str, psutil.Process], at_s: float) -> Sample:
    rss, fds = {}, {}
    for label, proc in procs.items():
        try:
            with proc.oneshot():
                rss[label], fds[label] = proc.memory_info().rss, proc.num_fds()
        except psutil.NoSuchProcess:
            pass  # gone: growth is judged on what is there at both ends
    return Sample(at_s, rss, fds)


def growth(samples: list[Sample]) -> tuple[Sample, Sample, dict[str, float], dict[str, int]]:
    """(baseline, last, RSS growth fraction and fd growth per process present in both)."""
    baseline = next((s for s in samples if s.at_s >= BASELINE_S), samples[0])
    last = samples[-1]
    both = baseline.rss.keys() & last.rss.keys()
    rss = {k: last.rss[k] / baseline.rss[k] - 1 for k in sorted(both)}
    fds = {k: last.fds[k] - baseline.fds[k] for k in sorted(both)}
    return baseline, last, rss, fds


def _by_minute(samples: list[Sample], label: str) -> list[float]:
    picked: dict[int, float] = {}
    for s in samples:
        if label in s.rss:
            picked.setdefault(int(s.at_s // 60), round(s.rss[label] / 2**20, 1))
    return list(picked.values())


@functools.cache
def _libc() -> ctypes.CDLL | None:
    # looked up once: find_library runs ldconfig, not a thing to do after every call
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name is not None else None


def _trim_heap() -> None:
    """Hand the C heap's free pages back to the OS, as the call's process exit would (glibc keeps
    them for reuse: a fragmented heap then reads as growth that no leak caused)."""
    if (libc := _libc()) is not None:
        libc.malloc_trim(0)


async def soak(
    settings: Settings,
    callers: int,
    minutes: float,
    audio: list[Path],
    out_dir: Path,
    *,
    turns_per_call: int = 3,
    sample_every_s: float = 10.0,
) -> dict[str, Any]:
    procs = watched_processes(settings)
    result = SoakResult()
    build_vad(settings)  # loaded once per process, so part of what is frozen
    gc.collect()
    gc.freeze()
    t0 = time.monotonic()
    deadline = t0 + minutes * 60

    async def caller(k: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            first = (k * 7 + n * turns_per_call) % len(audio)
            files = [audio[(first + j) % len(audio)] for j in range(turns_per_call)]
            out = out_dir / f"caller{k}-call{n:03d}"
            call = await run_call(settings, files, out, reply_timeout_s=REPLY_TIMEOUT_S)
            gc.collect()  # what the call's process ending would free (module docstring)
            _trim_heap()
            turns = call.voiced_turns()
            result.calls += 1
            result.turns += len(files)
            for i, path in enumerate(files):
                turn = turns[i] if i < len(turns) else None
                if failed(turn):
                    result.failed.append({"call": out.name, "turn": i + 1, "file": path.name})
            logged = (out / "turns.jsonl").read_text().splitlines() if (out / "turns.jsonl").exists() else []
            if len(logged) < len(files):
                result.incomplete_logs.append(out.name)
            n += 1

    async def sampler() -> None:
        while True:
            result.samples.append(sample(procs, time.monotonic() - t0))
            await asyncio.sleep(sample_every_s)

    watch = asyncio.create_task(sampler())
    try:
        await asyncio.gather(*(caller(k) for k in range(callers)))
    finally:
        watch.cancel()
        gc.unfreeze()
    result.samples.append(sample(procs, time.monotonic() - t0))
    baseline, last, rss, fds = growth(result.samples)
    return {
        "callers": callers,
        "minutes": minutes,
        "calls": result.calls,
        "turns": result.turns,
        "failed": result.failed,
        "incomplete_logs": result.incomplete_logs,
        "processes": {
            k: {
                "rss_mb_baseline": round(baseline.rss[k] / 2**20, 1),
                "rss_mb_last": round(last.rss[k] / 2**20, 1),
                "rss_growth": round(rss[k], 4),
                "fds_baseline": baseline.fds[k],
                "fds_last": last.fds[k],
                # one sample a minute: a leak climbs on, an allocator warming up levels off
                "rss_mb_by_minute": _by_minute(result.samples, k),
            }
            for k in rss
        },
        "baseline_at_s": round(baseline.at_s, 1),
        "last_at_s": round(last.at_s, 1),
        "out_dir": os.fspath(out_dir),
        # last, as the issue asks: the three figures a CI job checks
        "failed_turns": len(result.failed),
        "rss_growth_max": round(max(rss.values(), default=0.0), 4),
        "fd_growth_max": max(fds.values(), default=0),
    }


def render(figures: dict[str, Any], out: Console) -> None:
    table = Table(
        title=f"soak: {figures['callers']} callers for {figures['minutes']:g} min, {figures['calls']} calls, "
        f"{figures['turns']} turns; growth from {figures['baseline_at_s']:.0f} s to {figures['last_at_s']:.0f} s"
    )
    for col in ("process", "RSS MB then", "RSS MB last", "growth", "fds then", "fds last"):
        table.add_column(col, justify="left" if col == "process" else "right")
    for name, p in figures["processes"].items():
        table.add_row(
            name,
            f"{p['rss_mb_baseline']:.1f}",
            f"{p['rss_mb_last']:.1f}",
            f"{p['rss_growth'] * 100:+.1f} %",
            str(p["fds_baseline"]),
            str(p["fds_last"]),
        )
    out.print(table)
    for f in figures["failed"]:
        out.print(f"failed: {f['call']} turn {f['turn']} ({f['file']})", highlight=False)
    for name in figures["incomplete_logs"]:
        out.print(f"turn log incomplete: {name}", highlight=False)
    out.print(
        f"failed turns {figures['failed_turns']}, RSS growth max {figures['rss_growth_max'] * 100:+.1f} %, "
        f"fd growth max {figures['fd_growth_max']:+d}",
        highlight=False,
    )
