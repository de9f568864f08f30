"""`halfsec bench calls`: N simulated callers at once through the whole stack, M calls in all.

Each call is `halfsec demo`'s call (`run_call`: LiveKit's AgentSession, real services) in a
process of its own, as LiveKit runs each room's job in its own process; at most N run at once.
The first N start a little apart (`_SPREAD_S` in all), as callers do; later ones start when a
caller is done. Each call is first put to the box's admission (`agent/admission.py`, as the
worker does for LiveKit): past `worker.max_calls` it is refused, counted, and not placed. Per
concurrency level the bench reports v2v P50/P95 over every turn the callers said
(one that got no reply counts at the reply timeout, and is listed), per-stage P50/P95 of the
answered turns, failed turns (no reply, a fallback, or a call that crashed), and how far each
recorded v2v is from the same turn measured on the call's recording (the independent clock). On
the recording, a turn the agent talked over (still sounding when the caller's voice ended) has
no v2v: it is left out of "heard" and named, as in `bench compare`.
With a script (`--replies`), each turn's reply is the scripted one at real LLM cost, as in
`bench compare`: the models' own replies change from run to run, so only a script makes two
runs, or two levels, an A/B.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from configs import Settings
from latency import TurnLog, build_record
from latency.summary import COLUMNS, percentile, stage_percentiles

from ..admission import Admission, call_capacity
from ..session import build_llm, build_session, new_caller
from .call import CallResult, run_call
from .scripted import ScriptedLLM

log = logging.getLogger("halfsec.bench")

_SPREAD_S = 2.0  # the first wave of callers starts over this long, not all in the same frame
REPLY_TIMEOUT_S = 30.0  # a turn with no reply by then counts as this long


@dataclass
class CallOutcome:
    call: int
    files: list[Path]
    turns: list[dict[str, Any]]  # the records of the caller's utterances, one per file said
    audio_v2v_ms: list[float | None]  # the same turns measured on the call recording
    error: str | None = None
    invalid_records: int = 0  # every record of the call that broke an invariant
    refused: str | None = None  # why admission turned the call away (then it has no turns)
    talked_over: list[bool] = field(default_factory=list)  # per turn, on the recording


async def _call(settings: Settings, files: list[Path], out_dir: Path, replies: list[str] | None) -> CallResult:
    """`replies`: what the agent says on each turn of this call, at real LLM cost (scripted.py),
    or None for the models' own."""
    if replies is None:
        return await run_call(settings, files, out_dir, reply_timeout_s=REPLY_TIMEOUT_S)
    caller = new_caller()
    model = ScriptedLLM(build_llm(settings, caller), replies)
    async with model.turns(settings.llm.client_base_url, settings.token()) as before_turn:
        return await run_call(
            settings,
            files,
            out_dir,
            reply_timeout_s=REPLY_TIMEOUT_S,
            before_turn=before_turn,
            build=lambda settings, tracer: build_session(settings, tracer, model=model, caller=caller),
        )


def _one_call(
    settings: Settings, call: int, files: list[Path], out_dir: Path, replies: list[str] | None = None
) -> CallOutcome:
    """One call, in a worker process."""
    logging.basicConfig(level=logging.WARNING, format=f"call {call}: %(levelname)s %(name)s %(message)s")
    try:
        result = asyncio.run(_call(settings, files, out_dir, replies))
    except Exception as exc:  # a crashed call fails its turns; the bench goes on
        log.exception("call %d failed", call)
        return CallOutcome(call, files, [], [], error=f"{type(exc).__name__}: {exc}")
    invalid = sum(bool(t.get("invalid")) for t in result.turns)
    measured = result.measured
    return CallOutcome(
        call,
        files,
        result.voiced_turns(),
        [m.v2v_ms for m in measured],
        None,
        invalid,
        talked_over=[m.talked_over for m in measured],
    )


def failed(turn: dict[str, Any] | None) -> bool:
    """No record or no agent audio this turn, or the caller heard a fallback instead of an answer."""
    return turn is None or turn.get("v2v_ms") is None or bool(turn.get("fallback"))


def level_figures(concurrency: int, placed: list[CallOutcome], turns_per_call: int) -> dict[str, Any]:
    """The level's figures over the admitted calls; refused ones are counted apart."""
    outcomes = [o for o in placed if o.refused is None]
    # every turn each caller said, in order; None where the call has no record of it
    said = [(o, i, o.turns[i] if i < len(o.turns) else None) for o in outcomes for i in range(turns_per_call)]
    answered = [t for _, _, t in said if not failed(t)]
    unanswered = [
        {
            "call": o.call,
            "turn": i + 1,
            "file": o.files[i].name if i < len(o.files) else None,
            "why": "call crashed"
            if o.error
            else "no record"
            if t is None
            else "fallback"
            if t.get("fallback")
            else "no reply",
        }
        for o, i, t in said
        if failed(t)
    ]
    # a turn without a reply counts at the reply timeout: the tail says what callers lived through
    v2v = [REPLY_TIMEOUT_S * 1000 if t is None or t.get("v2v_ms") is None else t["v2v_ms"] for _, _, t in said]
    # the same turns measured on each call's recording (Silero's end of voice -> agent above -40 dBFS);
    # a turn the agent talked over has no v2v there (its answer cannot be told from the reply still
    # playing): left out and named, not counted as a turn without a reply
    talked_over = [(o, i) for o, i, _ in said if i < len(o.talked_over) and o.talked_over[i]]
    left_out = {(o.call, i) for o, i in talked_over}
    heard = [
        REPLY_TIMEOUT_S * 1000 if i >= len(o.audio_v2v_ms) or o.audio_v2v_ms[i] is None else o.audio_v2v_ms[i]
        for o, i, _ in said
        if (o.call, i) not in left_out
    ]
    stats = stage_percentiles(answered)
    gaps = [
        abs(t["v2v_ms"] - ms)
        for o in outcomes
        for t, ms in zip(o.turns, o.audio_v2v_ms, strict=False)  # a crashed call has fewer
        if not failed(t) and ms is not None
    ]

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "concurrency": concurrency,
        "calls": len(outcomes),
        "refused_calls": len(placed) - len(outcomes),
        "refused": [{"call": o.call, "why": o.refused} for o in placed if o.refused is not None],
        "turns": len(said),
        "failed_turns": len(unanswered),
        "failed_calls": sum(o.error is not None for o in outcomes),
        "unanswered": unanswered,
        "talked_over": [{"call": o.call, "turn": i + 1, "file": o.files[i].name} for o, i in talked_over],
        "invalid_records": sum(o.invalid_records for o in outcomes),
        "v2v_p50_ms": ms(percentile(v2v, 50)),
        "v2v_p95_ms": ms(percentile(v2v, 95)),
        "v2v_audio_p50_ms": ms(percentile(heard, 50)),
        "v2v_audio_p95_ms": ms(percentile(heard, 95)),
        "stages": {
            s.removesuffix("_ms"): {"p50_ms": ms(stats[s]["p50"]), "p95_ms": ms(stats[s]["p95"])}
            for s in COLUMNS
            if s != "v2v_ms"
        },
        # recorded v2v against the call recording's own clock, worst turn
        "v2v_vs_audio_max_ms": ms(max(gaps)) if gaps else None,
        "within_target": sum(t.get("within_target") is True for t in answered),
    }


async def run_level(
    settings: Settings,
    concurrency: int,
    calls: int,
    audio: list[Path],
    turns_per_call: int,
    out_dir: Path,
    replies: list[str] | None = None,
) -> dict[str, Any]:
    """M calls, N callers at once, each admitted call in its own process; call i takes turns
    from the audio list starting at file i * turns_per_call (cycled), so concurrent callers do
    not say the same thing at the same moment, and M calls of K turns say M * K files.
    `replies`: a script, reply k answering audio file k (cycled), whichever call says it, so
    every level speaks the same replies to the same turns."""
    loop = asyncio.get_running_loop()
    admission = Admission(call_capacity(settings))
    order = [[(i * turns_per_call + k) % len(audio) for k in range(turns_per_call)] for i in range(calls)]
    plans = [[audio[j] for j in turns] for turns in order]
    scripts = [None if not replies else [replies[j % len(replies)] for j in turns] for turns in order]
    callers = asyncio.Semaphore(concurrency)
    active = 0

    async def place(pool: ProcessPoolExecutor, i: int, files: list[Path]) -> CallOutcome:
        nonlocal active
        async with callers:
            if i < concurrency:
                await asyncio.sleep(_SPREAD_S * i / concurrency)
            if (why := admission.refusal(active)) is not None:
                log.info("call %d refused: %s", i, why)
                return CallOutcome(i, files, [], [], refused=why)
            active += 1
            try:
                return await loop.run_in_executor(
                    pool, _one_call, settings, i, files, out_dir / f"call-{i:03d}", scripts[i]
                )
            finally:
                active -= 1

    # spawn, not fork: a forked child would inherit this process's event loop and threads
    workers = min(concurrency, admission.capacity)
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        outcomes = await asyncio.gather(*(place(pool, i, files) for i, files in enumerate(plans)))
    for o in outcomes:
        if o.error:
            log.warning("call %d failed: %s", o.call, o.error)
    return level_figures(concurrency, list(outcomes), turns_per_call)


def trace_overhead_ms(turns: int = 2000) -> dict[str, float]:
    """What tracing costs a turn: every milestone marked and the record built (on the event
    loop, during the turn), and the durable write (flush + fsync, after the reply has played)."""
    from latency.trace import MILESTONES

    from ..tracing import CallTracer

    tracer = CallTracer("bench", lambda record: None)
    t0 = time.perf_counter()
    for _ in range(turns):
        for name in MILESTONES:
            tracer.mark(name, tracer.now())
        tracer.transcript("final_transcript", "How late are you open today?")
        tracer.close()
    marking = (time.perf_counter() - t0) * 1000 / turns
    with tempfile.TemporaryDirectory() as tmp, TurnLog(Path(tmp) / "turns.jsonl") as turn_log:
        record = build_record("bench", 1, {"last_voiced": 0.0, "first_frame_out": 0.5}, 500.0)
        t0 = time.perf_counter()
        for _ in range(200):
            turn_log.write(record)
        writing = (time.perf_counter() - t0) * 1000 / 200
    return {"trace_ms_per_turn": round(marking, 4), "turnlog_write_ms": round(writing, 3)}


async def run_bench(
    settings: Settings,
    levels: list[int],
    calls: int,
    audio: list[Path],
    turns_per_call: int,
    out_dir: Path,
    replies: list[str] | None = None,
) -> dict[str, Any]:
    """Every level in turn. The top-level figures are those of the last level, so
    `--concurrency N` alone prints N's figures at the top."""
    results: dict[str, Any] = {}
    for n in levels:
        log.info("concurrency %d: %d calls of %d turns", n, calls, turns_per_call)
        results[str(n)] = await run_level(settings, n, calls, audio, turns_per_call, out_dir / f"c{n}", replies)
    last = results[str(levels[-1])]
    return {
        **last,
        "levels": results,
        "scripted": replies is not None,
        **trace_overhead_ms(),
        "out_dir": os.fspath(out_dir),
    }


def render(figures: dict[str, Any], title: str, out: Console) -> None:
    """The table `halfsec bench calls` prints, the turns that got no answer, and tracing's cost."""
    table = Table(title=title)
    stages = list(figures["stages"])
    for name in (
        "calls at once",
        "refused",
        "turns",
        "failed",
        "invalid records",
        "v2v P50",
        "v2v P95",
        "heard P50/P95",
        "talked over",
        *(f"{s} P50/P95" for s in stages),
        "worst gap",
    ):
        table.add_column(name, justify="right")

    def pair(*values: float | None) -> str:
        return "/".join("-" if v is None else f"{v:.0f}" for v in values)

    for level in figures["levels"].values():
        table.add_row(
            str(level["concurrency"]),
            str(level["refused_calls"]),
            str(level["turns"]),
            str(level["failed_turns"]),
            str(level["invalid_records"]),
            pair(level["v2v_p50_ms"]),
            pair(level["v2v_p95_ms"]),
            pair(level["v2v_audio_p50_ms"], level["v2v_audio_p95_ms"]),
            str(len(level["talked_over"])),
            *(pair(*level["stages"][s].values()) for s in stages),
            f"{level['v2v_vs_audio_max_ms']}",
        )
    out.print(table)
    for level in figures["levels"].values():
        for r in level["refused"]:
            out.print(f"c={level['concurrency']} call {r['call']} refused: {r['why']}", highlight=False)
        for u in level["unanswered"]:
            counted = "" if u["why"] == "fallback" else " (counted at the reply timeout in v2v)"
            out.print(
                f"c={level['concurrency']} call {u['call']} turn {u['turn']} ({u['file']}): {u['why']}{counted}",
                highlight=False,
            )
        for t in level["talked_over"]:
            out.print(
                f"c={level['concurrency']} call {t['call']} turn {t['turn']} ({t['file']}): the agent was still "
                "talking when the caller's voice ended (no v2v on the recording: left out of heard)",
                highlight=False,
            )
    out.print(f"replies: {'scripted' if figures['scripted'] else 'the models own'}", highlight=False)
    out.print(
        f"tracing: {figures['trace_ms_per_turn'] * 1000:.0f} us a turn on the event loop; the turn log's "
        f"flush+fsync {figures['turnlog_write_ms']:.2f} ms, after the reply. Turn records under "
        f"{figures['out_dir']}",
        highlight=False,
        soft_wrap=True,
    )
