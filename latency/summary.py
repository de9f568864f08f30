"""Percentiles of each stage over a set of turns, and the table `halfsec demo` prints."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from .trace import STAGES

COLUMNS = tuple(STAGES)


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def stage_percentiles(turns: Iterable[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    rows = list(turns)
    out: dict[str, dict[str, float | None]] = {}
    for stage in COLUMNS:
        values = [r[stage] for r in rows if r.get(stage) is not None]
        out[stage] = {"p50": percentile(values, 50), "p95": percentile(values, 95), "n": len(values)}
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def render_table(turns: Sequence[dict[str, Any]], target_ms: float, console: Console) -> None:
    table = Table(title=f"per-turn latency, ms (target v2v <= {target_ms:.0f})")
    table.add_column("turn", justify="right")
    for stage in COLUMNS:
        table.add_column(stage.removesuffix("_ms"), justify="right")
    for r in turns:
        v2v = r.get("v2v_ms")
        style = "" if v2v is None else ("green" if v2v <= target_ms else "red")
        table.add_row(str(r["turn"]), *(_fmt(r.get(s)) for s in COLUMNS), style=style)
    stats = stage_percentiles(turns)
    for q in ("p50", "p95"):
        table.add_row(q.upper(), *(_fmt(stats[s][q]) for s in COLUMNS), style="bold")
    console.print(table)
    for r in turns:
        console.print(
            f"  {r['turn']}. caller: {r.get('user_text', '')!r}\n     agent:  {r.get('agent_text', '')!r}",
            soft_wrap=True,
            highlight=False,
        )
