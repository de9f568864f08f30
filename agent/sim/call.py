"""`halfsec demo`: one simulated call through the whole pipeline, with per-turn latency.

Each audio file is one user turn, fed at real-time pace (with `telephone`, as a phone call
delivers it: through an 8 kHz G.711 μ-law line). The next turn starts `gap_s` after the
agent's reply has been written, or, with `barge_in_at_s`, that long after the agent started
speaking (the caller interrupts). Writes OUT/turns.jsonl (one record per turn, flushed as it
lands), OUT/call.wav (loopback recording: caller left, agent right), OUT/agent.wav (the agent's
speech alone), and prints the latency table with each turn measured on the recording beside it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from livekit.agents import AgentSession
from rich.console import Console
from rich.table import Table

from configs import Settings
from latency import Budget, TurnLog, TurnRecord
from latency.summary import render_table, stage_percentiles

from ..session import HalfsecAgent, build_session
from ..tracing import CallTracer
from .caller import CallerEar, CallerMouth, CallRecorder, Utterance, by_telephone, load_turn
from .voice import WINDOW, MeasuredTurn, measure_call

log = logging.getLogger("halfsec.demo")


@dataclass
class CallResult:
    session_id: str
    turns: list[dict[str, Any]]
    out_dir: Path
    files: list[Path]
    measured: list[MeasuredTurn]  # per file, from call.wav

    def voiced_turns(self) -> list[dict[str, Any]]:
        """The records of the caller's utterances, in order (a turn the VAD cut off mid-sentence
        has no last voiced sample of its own)."""
        return [t for t in self.turns if "last_voiced" in t["marks_ms"]]


class CallAgent(Protocol):
    """The agent a session is built with: halfsec's, or the compare bench's stock one."""

    async def aclose_clients(self) -> None: ...


Build = Callable[[Settings, CallTracer], tuple[AgentSession, HalfsecAgent | CallAgent]]


async def run_call(
    settings: Settings,
    audio: Sequence[Path | Utterance],
    out_dir: Path,
    *,
    reply_timeout_s: float = 30.0,
    gap_s: float = 0.8,
    barge_in_at_s: float | None = None,
    before_turn: Callable[[int], Awaitable[None]] | None = None,
    build: Build = build_session,
    telephone: bool = False,
) -> CallResult:
    """`audio`: one speech file (or utterance already loaded) per turn. `before_turn(n)` is
    awaited before the caller speaks turn n (from 1), while the call is up: what a test does to
    the services mid-call (kill one, wait for it to come back). `build` makes the session (a
    test's fakes). `telephone`: the caller is on the phone, the agent hears them through an
    8 kHz G.711 μ-law line (their voice, and so v2v, is still timed on what they said)."""
    # bad audio fails before the call starts
    utterances = [a if isinstance(a, Utterance) else load_turn(a) for a in audio]
    if telephone:
        utterances = [by_telephone(u) for u in utterances]
    audio_files = [u.path for u in utterances]
    out_dir.mkdir(parents=True, exist_ok=True)
    session_id = uuid.uuid4().hex[:12]
    records: list[dict[str, Any]] = []
    written = asyncio.Event()

    with TurnLog(out_dir / "turns.jsonl") as turn_log:

        def on_record(record: TurnRecord) -> None:
            turn_log.write(record)
            records.append(record.to_json())
            written.set()

        async def answered(n: int) -> None:
            """Until n utterances have their records (or the reply timeout)."""
            try:
                async with asyncio.timeout(reply_timeout_s):
                    while sum("last_voiced" in r["marks_ms"] for r in records) < n:
                        written.clear()
                        await written.wait()
            except TimeoutError:
                log.warning("turn %d: no reply within %.0fs", n, reply_timeout_s)
                tracer.close()

        tracer = call_tracer(settings, session_id, on_record)
        recorder = CallRecorder()
        mouth, ear = CallerMouth(tracer.mark, recorder), CallerEar(tracer.mark, recorder)
        await mouth.prepare(utterances)
        session, agent = build(settings, tracer)
        session.input.audio = mouth
        session.output.audio = ear
        await session.start(agent=agent)
        try:
            await asyncio.sleep(0.5)  # let the VAD see some silence first, as on a real line
            for i, utt in enumerate(utterances, 1):
                if before_turn is not None:
                    await before_turn(i)
                await _speak(mouth, ear, utt, barge_in_at_s if i < len(utterances) else None, reply_timeout_s)
                if barge_in_at_s is None or i == len(utterances):
                    await answered(i)
                    await asyncio.sleep(gap_s)
        finally:
            mouth.close()
            await session.aclose()
            await agent.aclose_clients()
            tracer.close()
            recorder.write(out_dir / "call.wav")
            ear.write_heard(out_dir / "agent.wav")
    # measured on the recording against the files themselves (scripted utterances have none)
    files = [a for a in audio if not isinstance(a, Utterance)]
    measured = measure_call(out_dir / "call.wav", files) if len(files) == len(audio) else []
    return CallResult(session_id, records, out_dir, audio_files, measured)


async def _speak(
    mouth: CallerMouth, ear: CallerEar, utt: Utterance, barge_in_at_s: float | None, timeout_s: float
) -> None:
    """Say `utt`; with `barge_in_at_s`, return that long after the agent starts its reply (the
    caller's next utterance then interrupts it)."""
    ear.started.clear()
    await mouth.say(utt)
    if barge_in_at_s is None:
        return
    try:
        await asyncio.wait_for(ear.started.wait(), timeout_s)
    except TimeoutError:
        log.warning("no reply to %s to interrupt within %.0fs", utt.path.name, timeout_s)
        return
    await asyncio.sleep(barge_in_at_s)


def call_tracer(settings: Settings, session_id: str, sink: Callable[[TurnRecord], None]) -> CallTracer:
    """The tracer of a simulated call: the caller's audio marks the ground truth itself."""
    silence_ms = settings.vad.min_silence_s * 1000
    return CallTracer(
        session_id,
        sink,
        budget=Budget(*settings.latency.budget_values()),
        end_of_turn_by=settings.turn.detection,
        vad_silence_s=settings.vad.min_silence_s,
        # the VAD decides per 32 ms window, so its silence can end up to one window short
        min_endpoint_ms=silence_ms - WINDOW * 1000 / 16000,
        ground_truth_io=True,
    )


def traced_vs_measured(result: CallResult) -> list[tuple[int, float | None, float | None]]:
    """(turn, traced v2v, measured v2v) per utterance."""
    return [(t["turn"], t["v2v_ms"], m.v2v_ms) for t, m in zip(result.voiced_turns(), result.measured, strict=False)]


def worst_gap_ms(result: CallResult) -> float | None:
    gaps = [abs(a - b) for _, a, b in traced_vs_measured(result) if a is not None and b is not None]
    return max(gaps) if gaps else None


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
    table = Table(title="v2v traced vs measured on call.wav (Silero end of voice -> agent above -40 dBFS), ms")
    for col in ("turn", "file", "traced", "measured", "gap"):
        table.add_column(col, justify="left" if col == "file" else "right")
    for (turn, traced, measured), path in zip(traced_vs_measured(result), result.files, strict=False):
        gap = "-" if traced is None or measured is None else f"{traced - measured:+.1f}"
        table.add_row(str(turn), path.name, _ms(traced), _ms(measured), gap)
    console.print(table)
    worst = worst_gap_ms(result)
    console.print(f"worst traced-vs-measured gap: {_ms(worst, 1)} ms", highlight=False)
    for t in result.turns:
        if t.get("interrupted"):
            console.print(
                f"turn {t['turn']}: interrupted, agent silent {_ms(t.get('agent_stopped_ms'))} ms "
                "after the caller began",
                highlight=False,
            )
        if t.get("invalid"):
            console.print(f"[red]turn {t['turn']} breaks its invariants:[/] {'; '.join(t['invalid'])}")
    console.print(f"wrote turns.jsonl, call.wav and agent.wav to {result.out_dir}", soft_wrap=True)


def _ms(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
