"""The 500 ms voice-to-voice budget, split into stages along the turn's critical path.

A turn's v2v time (last voiced input sample -> first agent frame out) is cut at the milestones the
caller waits on, in order: end of turn, final transcript, LLM first token, first text chunk sent to
TTS, first TTS audio, first frame out. Each stage gets only the time the turn actually *waited* on
it: a milestone reached before the previous one (an LLM token from preemptive generation before the
final transcript, say) costs 0. So the stages always sum to v2v_ms, and when a turn is over the total
budget, at least one stage is over its own (the stage budgets sum to at most the total).

Budgets come in as plain numbers (configs/ owns the settings; this package imports nothing of ours).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

PATH_START = "last_voiced"

# Budget stage -> the milestone(s) that end it; the first one present is used. The first chunk the
# TTS gets is a clause (agent/plugins/chunking.py), so `tts_request` is when the reply became
# speakable; `llm_first_sentence` stands in for it when the TTS side did not mark it.
BUDGET_STAGES: dict[str, tuple[str, ...]] = {
    "endpoint": ("end_of_turn",),
    "stt": ("final_transcript",),
    "llm_first_token": ("llm_first_token",),
    "first_sentence": ("tts_request", "llm_first_sentence"),
    "tts_first_audio": ("tts_first_audio",),
    "transport": ("first_frame_out",),
}

DEFAULT_TOTAL_MS = 500.0  # the product's promise: voice to voice within half a second
DEFAULT_STAGE_BUDGETS_MS: Mapping[str, float] = MappingProxyType(
    {
        "endpoint": 200.0,
        "stt": 30.0,
        "llm_first_token": 150.0,
        "first_sentence": 60.0,
        "tts_first_audio": 50.0,
        "transport": 10.0,
    }
)


@dataclass(frozen=True)
class Budget:
    """Per-stage budgets and the v2v total, in milliseconds."""

    stages_ms: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_STAGE_BUDGETS_MS))
    total_ms: float = DEFAULT_TOTAL_MS

    def __post_init__(self) -> None:
        unknown = set(self.stages_ms) - set(BUDGET_STAGES)
        missing = set(BUDGET_STAGES) - set(self.stages_ms)
        if unknown or missing:
            raise ValueError(
                f"budget stages must be {list(BUDGET_STAGES)} (unknown {sorted(unknown)}, missing {sorted(missing)})"
            )
        # Over the total with every stage within its budget would leave no stage to blame.
        if sum(self.stages_ms.values()) > self.total_ms:
            raise ValueError(
                f"stage budgets sum to {sum(self.stages_ms.values()):g} ms, over the {self.total_ms:g} ms total"
            )

    def to_json(self) -> dict[str, float]:
        return {**{s: float(self.stages_ms[s]) for s in BUDGET_STAGES}, "total": float(self.total_ms)}

    @classmethod
    def from_json(cls, data: Mapping[str, float]) -> Budget:
        return cls({s: data[s] for s in BUDGET_STAGES}, data["total"])


def critical_path(marks: Mapping[str, float], scale: float = 1000.0) -> dict[str, float]:
    """Split last_voiced -> first_frame_out into the budget stages (milliseconds, rounded).

    `marks` are timestamps in one unit (seconds by default; pass scale=1 for `marks_ms`). A stage
    whose milestone is missing is left out, and its time lands in the next stage that has one.
    Each stage ends at its boundary rounded to 0.1 ms, so rounding never makes them stop summing
    to v2v_ms.
    """
    if PATH_START not in marks:
        return {}
    start = marks[PATH_START]
    reached = 0.0  # the last boundary, in rounded ms after `start`
    out: dict[str, float] = {}
    for stage, ends in BUDGET_STAGES.items():
        end = next((marks[m] for m in ends if m in marks), None)
        if end is None:
            continue
        boundary = max(reached, round((end - start) * scale, 1))
        out[stage] = round(boundary - reached, 1)
        reached = boundary
    return out


def over_budget(stages_ms: Mapping[str, float], budget: Budget) -> list[str]:
    """The stages over their budget, the largest overrun (in ms) first."""
    over = [s for s, ms in stages_ms.items() if s in budget.stages_ms and ms > budget.stages_ms[s]]
    return sorted(over, key=lambda s: stages_ms[s] - budget.stages_ms[s], reverse=True)
