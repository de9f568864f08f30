"""`halfsec report`: percentiles per stage, share of turns within the budget, worst turns.

Works on upgraded records (`latency.records`), so runs written by any schema version report alike.
The dashboard serves the same summary for its rolling window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from .budget import BUDGET_STAGES, Budget
from .summary import percentile

QUANTILES = (50, 95, 99)
# Component latencies worth a percentile beside the budget split (they overlap one another).
COMPONENTS = ("preflight_ms", "llm_ttft_ms", "llm_first_sentence_ms", "tts_ttfb_ms")


def _quantiles(values: list[float]) -> dict[str, Any]:
    ps = {f"p{q}": percentile(values, q) for q in QUANTILES}
    return {"n": len(values), **{k: None if v is None else round(v, 1) for k, v in ps.items()}}


def summarize(records: Sequence[dict[str, Any]], budget: Budget, *, worst: int = 5) -> dict[str, Any]:
    """Everything the report prints, as plain data (what `--json` writes)."""
    stages: dict[str, Any] = {}
    for stage in BUDGET_STAGES:
        values = [r["stages_ms"][stage] for r in records if stage in (r.get("stages_ms") or {})]
        over = sum(1 for r in records if stage in (r.get("over_budget") or ()))
        stages[stage] = {"budget_ms": budget.stages_ms[stage], **_quantiles(values), "over": over}
    v2v = [r["v2v_ms"] for r in records if r.get("v2v_ms") is not None]
    stages["v2v"] = {
        "budget_ms": budget.total_ms,
        **_quantiles(v2v),
        "over": sum(1 for v in v2v if v > budget.total_ms),
    }
    components = {c: _quantiles([r[c] for r in records if r.get(c) is not None]) for c in COMPONENTS}
    within = sum(1 for v in v2v if v <= budget.total_ms)
    answered = sorted((r for r in records if r.get("v2v_ms") is not None), key=lambda r: -r["v2v_ms"])
    return {
        "turns": len(records),
        "calls": len({r.get("session_id") for r in records}),
        "budget_ms": budget.to_json(),
        "within_budget": {"turns": within, "of": len(v2v), "share": within / len(v2v) if v2v else None},
        "stages": stages,
        "components": components,
        "interrupted": sum(1 for r in records if r.get("interrupted")),
        "fallback": sum(1 for r in records if r.get("fallback")),
        "unanswered": sum(1 for r in records if r.get("v2v_ms") is None and not r.get("interrupted")),
        # records that break an invariant: their figures are suspect, so they are counted aloud
        "invalid": sum(1 for r in records if r.get("invalid")),
        "worst": [_worst_entry(r) for r in answered[:worst]],
    }


def _worst_entry(r: dict[str, Any]) -> dict[str, Any]:
    budget = r.get("budget_ms") or {}
    return {
        "session_id": r.get("session_id"),
        "turn": r.get("turn"),
        "v2v_ms": r["v2v_ms"],
        "over_budget": [
            {"stage": s, "ms": r["stages_ms"][s], "budget_ms": budget.get(s)} for s in r.get("over_budget") or ()
        ],
        "user_text": r.get("user_text", ""),
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def render(summary: dict[str, Any], console: Console, *, source: str = "") -> None:
    total = summary["budget_ms"]["total"]
    within = summary["within_budget"]
    table = Table(
        title=f"{source} {summary['turns']} turns, {summary['calls']} call(s)".strip(),
        caption="stages split v2v along the critical path: they sum to v2v",
    )
    for col in ("stage", "budget", *(f"P{q}" for q in QUANTILES), "turns", "over budget"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for stage, s in summary["stages"].items():
        p95_over = s["p95"] is not None and s["p95"] > s["budget_ms"]
        table.add_row(
            stage,
            _ms(s["budget_ms"]),
            *(_ms(s[f"p{q}"]) for q in QUANTILES),
            str(s["n"]),
            str(s["over"]),
            style=("bold " if stage == "v2v" else "") + ("red" if p95_over else "green"),
        )
    console.print(table)
    comp = Table(title="component latencies, ms (they overlap)")
    for col in ("component", *(f"P{q}" for q in QUANTILES), "turns"):
        comp.add_column(col, justify="left" if col == "component" else "right")
    for name, s in summary["components"].items():
        comp.add_row(name.removesuffix("_ms"), *(_ms(s[f"p{q}"]) for q in QUANTILES), str(s["n"]))
    console.print(comp)
    share = "-" if within["share"] is None else f"{within['share']:.0%}"
    console.print(
        f"within {total:.0f} ms: {within['turns']}/{within['of']} turns ({share}); "
        f"interrupted {summary['interrupted']}, fallback {summary['fallback']}, "
        f"unanswered {summary['unanswered']}",
        highlight=False,
    )
    if summary["invalid"]:
        console.print(f"[red]{summary['invalid']} record(s) break an invariant[/] (see their `invalid` field)")
    if summary["worst"]:
        worst = Table(title="worst turns")
        for col in ("call", "turn", "v2v", "overran (stage ms/budget, worst first)"):
            worst.add_column(col, justify="right" if col in ("turn", "v2v") else "left")
        for w in summary["worst"]:
            overran = ", ".join(f"{o['stage']} {_ms(o['ms'])}/{_ms(o['budget_ms'])}" for o in w["over_budget"])
            worst.add_row(str(w["session_id"]), str(w["turn"]), _ms(w["v2v_ms"]), overran or "-")
        console.print(worst)
