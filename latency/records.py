"""Reading turn records of any schema version, from a turns.jsonl or a run directory.

Everything that reads records (report, dashboard, metrics) goes through `upgrade`, so it sees the
current shape: older records get the fields they lacked, derived from their `marks_ms`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .budget import Budget, critical_path, over_budget
from .turnlog import read_turns

TURNS_FILE = "turns.jsonl"


def upgrade(record: Mapping[str, Any], budget: Budget) -> dict[str, Any]:
    """A copy of `record` in the current shape. `budget` judges records that carry none."""
    out = dict(record)
    version = int(out.get("schema", 1))
    if version < 2:
        # Schema 1 had no preflight, no stage split and only a v2v target: derive them from the
        # milestones (marks_ms are already in ms, on one clock).
        out.setdefault("preflight_ms", None)
        out["stages_ms"] = critical_path(out.get("marks_ms") or {}, scale=1.0)
        out["over_budget"] = over_budget(out["stages_ms"], budget)
        out["budget_ms"] = budget.to_json()
        if out.get("v2v_ms") is not None:
            out["within_target"] = out["v2v_ms"] <= budget.total_ms
        out.setdefault("fallback", "fallback" in (out.get("marks_ms") or {}))
    if version < 3:
        # Schema 2 timed the first preflight and LLM request of the turn, whichever speech they
        # belonged to, and checked nothing: its figures stand as written.
        out.setdefault("speech_id", (out.get("livekit") or {}).get("speech_id"))
        out.setdefault("preflights", None)
        out.setdefault("preemptive", None)
        out.setdefault("agent_stopped_ms", None)
        out.setdefault("false_interruptions", 0)
        out.setdefault("invalid", [])
    if version < 4:  # schema 3 had no unheard turns: an empty final went unanswered
        out.setdefault("unheard", False)
    # `schema` keeps saying what the record was written as
    return out


def turn_files(source: str | os.PathLike[str]) -> list[Path]:
    """A turns.jsonl itself, or every turns.jsonl under a run directory (a worker writes one per
    room), oldest first."""
    path = Path(source)
    if path.is_dir():
        return sorted(path.rglob(TURNS_FILE), key=lambda p: (p.stat().st_mtime, str(p)))
    if path.is_file():
        return [path]
    raise FileNotFoundError(f"no turns.jsonl or run directory at {path}")


def load_records(source: str | os.PathLike[str], budget: Budget) -> list[dict[str, Any]]:
    """All records under `source`, upgraded to the current shape."""
    return [upgrade(r, budget) for f in turn_files(source) for r in read_turns(f)]
