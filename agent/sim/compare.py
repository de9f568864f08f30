"""`halfsec bench compare`: the stock LiveKit Agents pipeline (stock.py) and halfsec on the same
turns, in one run, with the same replies when a script is given (scripted.py).

The turns are cut into calls of `turns_per_call`; each call is made by both sides back to back,
the side going first alternating call by call, so a machine that slows down during the run
weighs on both alike. Each side's v2v is measured on its own call recording (Silero's end of the
caller's voice -> the agent's first sample above -40 dBFS: `voice.measure_call`), the same
way for both. A turn with no reply counts at the reply timeout and is listed; a turn whose
caller spoke over the agent's previous reply until their voice ended has no v2v and is listed
too (`talked_over`; the reply still playing is no answer). The per-stage
medians are LiveKit's own (`MetricsReport` of the user's and the agent's messages), which both
sides report the same way; LLM requests are counted at the plugin, a preemptive one thrown away
included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import soundfile as sf
from livekit.agents import AgentSession
from livekit.plugins import openai
from rich.console import Console
from rich.table import Table

from configs import Settings
from latency.summary import percentile

from ..session import build_llm, build_session, new_caller
from ..tracing import CallTracer
from .call import CallResult, run_call
from .scripted import ScriptedLLM
from .stock import build_stock_session, stock_defaults

log = logging.getLogger("halfsec.compare")

SIDES = ("stock", "halfsec")
REPLY_TIMEOUT_S = 30.0
# LiveKit's own per-turn metrics (seconds), from the user's message and from the agent's
STAGES = {
    "end_of_turn": ("user", "end_of_turn_delay"),
    "transcription": ("user", "transcription_delay"),
    "llm_ttft": ("assistant", "llm_node_ttft"),
    "tts_ttfb": ("assistant", "tts_node_ttfb"),
}


def varied_turns(
    files: list[tuple[Path, str]],
    count: int,
    min_s: float = 1.0,
    max_s: float = 10.0,
    usable: Callable[[Path], bool] = lambda _: True,
) -> list[Path]:
    """`count` turns of `min_s`-`max_s` seconds from (file, category) pairs, taken from each
    category in turn (the dev set's one-word answers, names, numbers, accents, noise ...),
    skipping files `usable` refuses (asked only of files that would be taken)."""
    by_category: dict[str, list[Path]] = {}
    for path, category in files:
        if min_s <= sf.info(path).duration <= max_s:
            by_category.setdefault(category, []).append(path)
    queues = [list(paths) for paths in by_category.values()]
    picked: list[Path] = []
    while len(picked) < count and any(queues):
        for queue in queues:
            while queue and len(picked) < count:
                if usable(path := queue.pop(0)):
                    picked.append(path)
                    break
    return picked


# The turns the defaults take (`bench calls --calls 8 --turns 5`; `bench compare`'s 20 are its
# first half): what this tree's settings were chosen on.
TUNED_TURNS = 40
# Longer clips are the "long" category's monologues, not turns.
HELD_OUT_MAX_S = 12.0


def held_out_turns(
    files: list[tuple[Path, str]], usable: Callable[[Path], bool] = lambda _: True, max_s: float = HELD_OUT_MAX_S
) -> list[Path]:
    """The clips the defaults never take: every (file, category) pair outside the first
    `TUNED_TURNS` that `varied_turns` picks, up to `max_s` seconds and `usable`, in name order.
    A change tuned on the default turns is checked on these (speech it was not tuned on)."""
    tuned = set(varied_turns(files, TUNED_TURNS, usable=usable))
    rest = [path for path, _ in files if path not in tuned and sf.info(path).duration <= max_s]
    return sorted((path for path in rest if usable(path)), key=lambda path: path.name)


def side_llm(
    settings: Settings,
    side: str,
    replies: list[str] | None,
    pieces: dict[str, list[str]] | None = None,
    caller: str | None = None,
) -> ScriptedLLM:
    """The side's LLM plugin: halfsec's as the profile builds it (`caller`: the call's name for
    the LLM hold, as `build_session` gets it); stock's with no options. `pieces`: the replies
    already tokenized this run."""
    if side == "halfsec":
        return ScriptedLLM(build_llm(settings, caller), replies, pieces)
    plugin = openai.LLM(
        model=settings.llm.served_model_name,
        base_url=settings.llm.client_base_url,
        api_key=settings.token() or "halfsec-local",  # the openai client wants one
    )
    return ScriptedLLM(plugin, replies, pieces)


def _builder(side: str, model: ScriptedLLM, caller: str) -> Callable[[Settings, CallTracer], tuple[AgentSession, Any]]:
    if side == "halfsec":
        return lambda settings, tracer: build_session(settings, tracer, model=model, caller=caller)
    return lambda settings, tracer: build_stock_session(settings, tracer, model)


def turn_rows(result: CallResult, model: ScriptedLLM, first_turn: int) -> list[dict[str, Any]]:
    """One row per file said: v2v measured on the recording, and the LLM requests made while it
    was the caller's turn. (Records are not per file: a pause inside an utterance can end a turn.)"""
    rows = []
    for k, path in enumerate(result.files):
        measured = result.measured[k] if k < len(result.measured) else None
        v2v = None if measured is None else measured.v2v_ms
        turn = first_turn + k
        rows.append(
            {
                "file": path.name,
                "turn": turn,
                "v2v_ms": None if v2v is None else round(v2v, 1),
                "talked_over": measured is not None and measured.talked_over,
                "llm_requests": model.requests[turn],
                "scripted": model.reply(turn),
            }
        )
    return rows


def stage_values(record: dict[str, Any]) -> dict[str, float | None]:
    """LiveKit's own stage figures in one turn record, ms."""
    livekit = record.get("livekit", {})
    found = {"user": livekit.get("user", {}), "assistant": livekit.get("metrics", {}).get("assistant", {})}
    return {
        f"{stage}_ms": None if (v := found[who].get(key)) is None else round(v * 1000, 1)
        for stage, (who, key) in STAGES.items()
    }


def side_figures(
    rows: list[dict[str, Any]], records: list[dict[str, Any]], allowed: set[str] | None = None
) -> dict[str, Any]:
    """`rows`: one per file said; `records`: every turn record of the side's calls; `allowed`:
    what the agent may say with a script (the replies and its fallbacks), None without one."""
    # a turn the agent talked over has no v2v (voice.MeasuredTurn): left out, and listed
    timed = [r for r in rows if not r.get("talked_over")]
    v2v = [REPLY_TIMEOUT_S * 1000 if r["v2v_ms"] is None else r["v2v_ms"] for r in timed]
    valid = [stage_values(r) for r in records if not r.get("invalid")]

    def median(key: str) -> float | None:
        values = [v[key] for v in valid if v[key] is not None]
        return None if not values else round(percentile(values, 50), 1)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    # a reply the caller spoke over is cut where they did (LiveKit keeps what was heard)
    said = [r.get("agent_text", "").strip() for r in records if not r.get("interrupted")]
    return {
        "turns": len(rows),
        "unanswered": [r["file"] for r in timed if r["v2v_ms"] is None],
        "talked_over": [r["file"] for r in rows if r.get("talked_over")],
        "v2v_p50_ms": ms(percentile(v2v, 50)),
        "v2v_p95_ms": ms(percentile(v2v, 95)),
        "stages_p50_ms": {stage: median(f"{stage}_ms") for stage in STAGES},
        "llm_requests_per_turn": round(sum(r["llm_requests"] for r in rows) / len(rows), 2) if rows else None,
        "records": len(records),
        "invalid_records": sum(bool(r.get("invalid")) for r in records),
        "fallbacks": sum(bool(r.get("fallback") or r.get("unheard")) for r in records),
        # with a script: anything spoken that is neither a scripted reply nor a fallback (halfsec
        # stops after `llm.max_sentences`, so a longer reply would be cut there by design)
        "off_script": [] if allowed is None else [t for t in said if t and t not in allowed],
    }


async def run_compare(
    settings: Settings,
    audio: list[Path],
    replies: list[str] | None,
    turns_per_call: int,
    out_dir: Path,
) -> dict[str, Any]:
    rows: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    records: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    calls = [audio[i : i + turns_per_call] for i in range(0, len(audio), turns_per_call)]
    pieces: dict[str, list[str]] = {}  # the replies tokenized once, by the first call's plugin
    for c, files in enumerate(calls):
        first_turn = c * turns_per_call + 1  # the script goes on across calls
        order = SIDES if c % 2 == 0 else SIDES[::-1]
        for side in order:
            caller = new_caller()
            model = side_llm(settings, side, replies, pieces, caller)
            log.info("call %d/%d, %s: %d turns", c + 1, len(calls), side, len(files))
            async with model.turns(settings.llm.client_base_url, settings.token(), first_turn) as before_turn:
                result = await run_call(
                    settings,
                    files,
                    out_dir / side / f"call-{c:02d}",
                    reply_timeout_s=REPLY_TIMEOUT_S,
                    before_turn=before_turn,
                    build=_builder(side, model, caller),
                )
            rows[side].extend(turn_rows(result, model, first_turn))
            records[side].extend(result.turns)
    allowed = None
    if replies is not None:
        allowed = {*replies, settings.asr.fallback_text, settings.llm.fallback_text, settings.tts.fallback_text}
    figures: dict[str, Any] = {side: side_figures(rows[side], records[side], allowed) for side in SIDES}
    stock, ours = figures["stock"], figures["halfsec"]
    figures["ratio"] = {q: None if not stock[q] else round(ours[q] / stock[q], 3) for q in ("v2v_p50_ms", "v2v_p95_ms")}
    figures.update(
        scripted=replies is not None,
        stock_defaults=stock_defaults(),
        turns=rows,
        out_dir=str(out_dir),
    )
    return figures


def render(figures: dict[str, Any], out: Console) -> None:
    table = Table(title="stock LiveKit Agents vs halfsec, same turns, same run (ms; v2v from the audio)")
    columns = ("side", "turns", "no reply", "v2v P50", "v2v P95", *(f"{s} P50" for s in STAGES), "LLM req/turn")
    for col in (*columns, "fallbacks", "invalid records"):
        table.add_column(col, justify="left" if col == "side" else "right")

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    for side in SIDES:
        f = figures[side]
        table.add_row(
            side,
            str(f["turns"]),
            str(len(f["unanswered"])),
            ms(f["v2v_p50_ms"]),
            ms(f["v2v_p95_ms"]),
            *(ms(f["stages_p50_ms"][s]) for s in STAGES),
            str(f["llm_requests_per_turn"]),
            str(f["fallbacks"]),
            f"{f['invalid_records']} of {f['records']}",
        )
    out.print(table)
    r = figures["ratio"]
    out.print(f"halfsec / stock: P50 {r['v2v_p50_ms']}x, P95 {r['v2v_p95_ms']}x", highlight=False)
    d = figures["stock_defaults"]
    out.print(
        f"stock defaults: turn detection {d['turn_detection']}, endpointing {d['endpointing']}, preemptive "
        f"{d['preemptive_generation']}, Silero min silence {d['vad_min_silence_s']} s",
        highlight=False,
        soft_wrap=True,
    )
    for side in SIDES:
        for name in figures[side]["unanswered"]:
            out.print(f"{side}: no reply to {name} (counted at {REPLY_TIMEOUT_S:.0f} s)", highlight=False)
        for name in figures[side]["talked_over"]:
            out.print(
                f"{side}: still talking when the caller's voice ended in {name} (no v2v; left out)", highlight=False
            )
        if figures["scripted"] and figures[side]["off_script"]:
            off = "; ".join(repr(t) for t in figures[side]["off_script"])
            out.print(f"{side}: said other than the script: {off}", highlight=False)
    out.print(f"replies: {'scripted' if figures['scripted'] else 'the models own'}; calls under {figures['out_dir']}")
