"""`halfsec demo`: one simulated call through the whole pipeline, with per-turn latency.

Each audio file is one user turn, fed at real-time pace; the next turn starts after the agent's
reply has finished playing. Writes OUT/turns.jsonl (one record per turn, flushed as it lands),
OUT/call.wav (caller left, agent right, on one timeline), OUT/agent.wav (the agent's speech alone)
and prints the latency table.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from configs import Settings
from latency import Budget, TurnLog, TurnRecord, TurnTracer
from latency.summary import render_table, stage_percentiles

from .caller import CallerEar, CallerMouth, CallRecorder, load_speech
from .session import build_session

log = logging.getLogger("halfsec.demo")


@dataclass
class CallResult:
    session_id: str
    turns: list[dict]
    out_dir: Path


async def run_call(
    settings: Settings,
    audio_files: list[Path],
    out_dir: Path,
    *,
    reply_timeout_s: float = 30.0,
    gap_s: float = 0.8,
    before_turn: Callable[[int], Awaitable[None]] | None = None,
) -> CallResult:
    """`before_turn(n)` is awaited before the caller speaks turn n (from 1), while the call is up:
    what a test does to the services mid-call (kill one, wait for it to come back)."""
    speech = [load_speech(f) for f in audio_files]  # fail on bad audio before the call starts
    out_dir.mkdir(parents=True, exist_ok=True)
    session_id = uuid.uuid4().hex[:12]
    records: list[dict] = []
    turn_done = asyncio.Event()

    with TurnLog(out_dir / "turns.jsonl") as turn_log:

        def on_record(record: TurnRecord) -> None:
            turn_log.write(record)
            records.append(record.to_json())
            turn_done.set()

        tracer = TurnTracer(session_id, on_record, budget=Budget(*settings.latency.budget_values()))
        recorder = CallRecorder()
        mouth, ear = CallerMouth(tracer, recorder), CallerEar(tracer, recorder)
        session, agent = build_session(settings, tracer)
        # LiveKit's per-speech metrics (EOU, LLM, TTS), joined to turns by speech id. The event is
        # deprecated (LiveKit logs a warning) but is the only one that carries the speech id.
        session.on("metrics_collected", tracer.on_metrics_collected)
        session.input.audio = mouth
        session.output.audio = ear
        await session.start(agent=agent)
        try:
            await asyncio.sleep(0.5)  # let the VAD see some silence first, as on a real line
            for i, pcm in enumerate(speech, 1):
                if before_turn is not None:
                    await before_turn(i)
                turn_done.clear()
                await mouth.say(pcm)
                try:
                    await asyncio.wait_for(turn_done.wait(), reply_timeout_s)
                except asyncio.TimeoutError:
                    log.warning("turn %d: no reply within %.0fs", i, reply_timeout_s)
                    tracer.close_turn()
                await asyncio.sleep(gap_s)
        finally:
            mouth.close()
            await session.aclose()
            await agent.aclose_clients()
            tracer.close_turn()
            recorder.write(out_dir / "call.wav")
            ear.write_heard(out_dir / "agent.wav")
    return CallResult(session_id, records, out_dir)


def print_summary(result: CallResult, settings: Settings, console: Console) -> None:
    render_table(result.turns, settings.latency.target_ms, console)
    stats = stage_percentiles(result.turns)
    v2v = stats["v2v_ms"]
    if v2v["p50"] is not None:
        verdict = "within" if v2v["p50"] <= settings.latency.target_ms else "over"
        console.print(
            f"v2v P50 {v2v['p50']:.0f} ms, P95 {v2v['p95']:.0f} ms: P50 {verdict} the "
            f"{settings.latency.target_ms:.0f} ms target ({v2v['n']} turns)"
        )
    console.print(f"wrote turns.jsonl, call.wav and agent.wav to {result.out_dir}", soft_wrap=True)
