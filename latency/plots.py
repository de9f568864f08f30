"""`halfsec report --plot`: a waterfall of turns against the budget, and histograms per stage."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display here, and none needed

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .budget import BUDGET_STAGES, Budget  # noqa: E402

MAX_WATERFALL_TURNS = 40


def plot_paths(path: str | Path) -> tuple[Path, Path]:
    """FILE.png -> (FILE-waterfall.png, FILE-histogram.png)."""
    p = Path(path)
    return p.with_name(f"{p.stem}-waterfall.png"), p.with_name(f"{p.stem}-histogram.png")


def write_plots(records: Sequence[dict[str, Any]], budget: Budget, path: str | Path) -> tuple[Path, Path]:
    waterfall, histogram = plot_paths(path)
    waterfall.parent.mkdir(parents=True, exist_ok=True)
    _waterfall(records, budget, waterfall)
    _histograms(records, budget, histogram)
    return waterfall, histogram


def _colors() -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {stage: cmap(i) for i, stage in enumerate(BUDGET_STAGES)}


def _waterfall(records: Sequence[dict[str, Any]], budget: Budget, out: Path) -> None:
    """One row per turn (the latest ones), its v2v split into stages; the budget on top."""
    turns = [r for r in records if r.get("stages_ms")][-MAX_WATERFALL_TURNS:]
    rows: list[tuple[str, dict[str, float], list[str]]] = [("budget", dict(budget.stages_ms), [])]
    rows += [
        (f"{r.get('session_id', '')[:6]} #{r.get('turn')}", r["stages_ms"], r.get("over_budget") or []) for r in turns
    ]
    colors = _colors()
    fig, ax = plt.subplots(figsize=(11, 1.6 + 0.38 * len(rows)))
    for y, (_, stages, over) in enumerate(rows):
        left = 0.0
        for stage in BUDGET_STAGES:
            ms = stages.get(stage)
            if ms is None:
                continue
            is_over = stage in over
            ax.barh(
                y,
                ms,
                left=left,
                color=colors[stage],
                edgecolor="red" if is_over else "white",
                linewidth=2 if is_over else 0.5,
                hatch="//" if is_over else None,
            )
            left += ms
        if y:
            ax.text(left, y, f" {left:.0f}", va="center", fontsize=8)
    ax.axvline(budget.total_ms, color="black", linestyle="--", linewidth=1)
    ax.text(budget.total_ms, -0.7, f"{budget.total_ms:.0f} ms budget", fontsize=8, ha="left")
    ax.set_yticks(range(len(rows)), [label for label, _, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms after the caller's last voiced sample (hatched red: over its stage budget)")
    ax.set_title("voice-to-voice waterfall: critical-path stages per turn")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    # under the axes: inside, it would hide the longest (most interesting) bars
    fig.legend(handles, list(colors), loc="lower center", fontsize=8, ncol=len(colors), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _histograms(records: Sequence[dict[str, Any]], budget: Budget, out: Path) -> None:
    """v2v and each stage: the distribution of turns, with the budget as a dashed line."""
    panels = [("v2v", [r["v2v_ms"] for r in records if r.get("v2v_ms") is not None], budget.total_ms)]
    panels += [
        (
            stage,
            [r["stages_ms"][stage] for r in records if stage in (r.get("stages_ms") or {})],
            budget.stages_ms[stage],
        )
        for stage in BUDGET_STAGES
    ]
    colors = {"v2v": "black", **_colors()}
    fig, axes = plt.subplots(2, 4, figsize=(13, 6))
    for ax, (name, values, limit) in zip(axes.flat, panels, strict=False):
        if values:
            ax.hist(values, bins=min(30, max(5, len(values))), color=colors[name], alpha=0.8)
        ax.axvline(limit, color="red", linestyle="--", linewidth=1)
        ax.set_title(f"{name} (n={len(values)}, budget {limit:.0f} ms)", fontsize=9)
        ax.set_xlabel("ms", fontsize=8)
        ax.set_ylabel("turns", fontsize=8)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("turns per latency, by stage (red dashed: budget)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
