"""What a turn's latency record says: its milestones, its stages, and the invariants it must keep.

A turn is one user utterance and the agent speech that answered it. Its milestones come in two
groups (agent/tracing.py decides which mark belongs where):
- the user's: when they spoke, stopped, and when the turn's transcript existed;
- the reply's: the LLM request, TTS and playout of the one speech that answered (LiveKit's
  `speech_id`), never of a preemptive generation LiveKit threw away.

`build_record` turns those timestamps into a `TurnRecord`; `invariants` lists what is wrong with
one. A record that breaks an invariant is still written, with the reasons in `invalid`.

This module imports nothing from the rest of halfsec: everything else imports it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .budget import Budget, critical_path, over_budget

# 3: speech_id, preflights, preemptive, agent_stopped_ms, false_interruptions, invalid; the
# preflight is the one whose transcript became the final. Older records: `latency.records.upgrade`.
SCHEMA_VERSION = 4

# Milestones in pipeline order. A turn's record holds whichever of them were seen.
USER_MILESTONES = (
    "speech_start",  # the session's VAD: the user started speaking
    "first_voiced",  # ground truth from the audio input: the first voiced sample was fed
    "last_voiced",  # ... the last voiced sample was fed (else the VAD's estimate)
    "end_of_turn",  # the turn detector (turn.detection) ended the user's turn
    "stt_request",  # audio sent to services/asr (one-shot path)
    # The streaming ASR's early transcript that became the final (preemptive generation starts on it).
    "preflight_transcript",
    "final_transcript",  # transcript back from services/asr
)
SPEECH_MILESTONES = (
    "llm_request",  # chat request sent to the LLM
    "llm_first_token",
    "llm_first_sentence",  # enough text for the first TTS chunk
    "tts_request",  # first text sent to services/tts
    "tts_first_audio",  # first PCM back from services/tts
    "first_frame_out",  # first agent sample above -40 dBFS handed to the room / audio output
    # the agent's audio stopped at the caller's ear: played out, or cut off or paused for the
    # caller (a pause that resumes is no stop)
    "agent_stopped",
)
# Either side: the caller heard a fallback (a component failed), or was asked to repeat (speech
# was heard, but no words came of it).
MILESTONES = (*USER_MILESTONES, *SPEECH_MILESTONES, "fallback", "unheard")

# Component durations in milliseconds: name -> (from milestone, to milestone). They may overlap;
# `budget.critical_path` is the split of v2v_ms into stages that do not.
STAGES: dict[str, tuple[str, str]] = {
    "endpoint_ms": ("last_voiced", "end_of_turn"),
    # how long after the caller stopped a transcript existed to start the LLM on (0: it already did)
    "preflight_ms": ("last_voiced", "preflight_transcript"),
    # how long after the end of the turn its transcript came (0: it came first)
    "stt_ms": ("end_of_turn", "final_transcript"),
    "llm_ttft_ms": ("llm_request", "llm_first_token"),
    "llm_first_sentence_ms": ("llm_request", "llm_first_sentence"),
    "tts_ttfb_ms": ("tts_request", "tts_first_audio"),
    "v2v_ms": ("last_voiced", "first_frame_out"),
}
# Stages that are waits: a milestone reached before its start cost the turn nothing.
_WAITS = {"preflight_ms", "stt_ms"}

# Pairs that cause and effect put in this order, whenever both were seen.
CAUSAL_ORDER: tuple[tuple[str, str], ...] = (
    ("first_voiced", "last_voiced"),
    ("speech_start", "end_of_turn"),
    ("last_voiced", "end_of_turn"),
    ("stt_request", "final_transcript"),
    ("llm_request", "llm_first_token"),
    ("llm_first_token", "llm_first_sentence"),
    ("llm_first_token", "tts_request"),
    ("tts_request", "tts_first_audio"),
    ("tts_first_audio", "first_frame_out"),
    ("last_voiced", "first_frame_out"),
    ("first_frame_out", "agent_stopped"),
)

# Rounding to 0.1 ms leaves the stages' sum this far from v2v_ms at most.
_SUM_SLACK_MS = 0.05


@dataclass
class Preemptive:
    """LiveKit's preemptive generations for this turn: started on a transcript before the turn
    was confirmed; `used` when the reply was one of them; the others' LLM/TTS time was wasted."""

    started: int = 0
    used: bool = False
    discarded_ms: float = 0.0


@dataclass
class TurnRecord:
    """One line of turns.jsonl."""

    session_id: str
    turn: int
    user_text: str = ""
    agent_text: str = ""
    speech_id: str | None = None  # LiveKit's id of the speech that answered
    endpoint_ms: float | None = None
    preflight_ms: float | None = None
    stt_ms: float | None = None
    llm_ttft_ms: float | None = None
    llm_first_sentence_ms: float | None = None
    tts_ttfb_ms: float | None = None
    v2v_ms: float | None = None
    interrupted: bool = False
    # the caller's next utterance began (first voiced sample) -> the agent's audio stopped
    agent_stopped_ms: float | None = None
    false_interruptions: int = 0  # the agent paused for caller sound that was no turn, and resumed
    fallback: bool = False
    unheard: bool = False  # the ASR heard speech but no words: the agent asked the caller to repeat
    preflights: int = 0  # early transcripts the ASR sent this turn; only the one that held is timed
    preemptive: Preemptive = field(default_factory=Preemptive)
    # v2v_ms within the total budget (None: no agent audio this turn).
    within_target: bool | None = None
    # v2v_ms split into the budget stages (budget.BUDGET_STAGES); sums to v2v_ms.
    stages_ms: dict[str, float] = field(default_factory=dict)
    # The stages over their budget, worst overrun first: over_budget[0] is the one to blame.
    over_budget: list[str] = field(default_factory=list)
    # The budget this turn was judged against (stage -> ms, and "total").
    budget_ms: dict[str, float] = field(default_factory=dict)
    # Milestones as milliseconds after the turn's first milestone, for waterfalls.
    marks_ms: dict[str, float] = field(default_factory=dict)
    # LiveKit's own metrics of the answering speech, kept as reported, for cross-checking: per
    # message ("user", "assistant") and by type ("metrics").
    livekit: dict[str, Any] = field(default_factory=dict)
    # The invariants this record breaks (empty: none). Counted by /metrics and `halfsec report`.
    invalid: list[str] = field(default_factory=list)
    wall_time: float = 0.0
    schema: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)


def build_record(
    session_id: str,
    turn: int,
    marks: Mapping[str, float],
    budget: Budget | float,
    *,
    min_endpoint_ms: float | None = None,
    next_voiced: float | None = None,
    **fields: Any,
) -> TurnRecord:
    """The record of one turn from its milestones (monotonic seconds). `next_voiced` is when the
    caller's next utterance began, for `agent_stopped_ms` of an interrupted reply; `fields` are
    the record's other fields as they are (texts, counts, LiveKit's metrics)."""
    if not isinstance(budget, Budget):  # a bare v2v target
        budget = Budget(total_ms=budget)
    record = TurnRecord(session_id=session_id, turn=turn, wall_time=time.time(), **fields)
    for stage, (start, end) in STAGES.items():
        if start in marks and end in marks:
            ms = _ms(marks[end] - marks[start])
            setattr(record, stage, max(0.0, ms) if stage in _WAITS else ms)
    if record.interrupted and next_voiced is not None and "agent_stopped" in marks:
        record.agent_stopped_ms = _ms(marks["agent_stopped"] - next_voiced)
    if marks:
        origin = min(marks.values())
        record.marks_ms = {n: _ms(marks[n] - origin) for n in MILESTONES if n in marks}
    record.fallback = record.fallback or "fallback" in marks
    record.unheard = record.unheard or "unheard" in marks
    record.stages_ms = critical_path(marks)
    record.over_budget = over_budget(record.stages_ms, budget)
    record.budget_ms = budget.to_json()
    if record.v2v_ms is not None:
        record.within_target = record.v2v_ms <= budget.total_ms
    record.invalid = invariants(record, marks, min_endpoint_ms=min_endpoint_ms)
    return record


def invariants(record: TurnRecord, marks: Mapping[str, float], *, min_endpoint_ms: float | None = None) -> list[str]:
    """What is wrong with `record` (built from `marks`): empty when nothing is.

    Every stage >= 0; the critical-path stages sum to v2v_ms; the endpoint no shorter than the
    configured end-of-speech silence allows (`min_endpoint_ms`); milestones in causal order.
    """
    problems = [f"{s} {v:g} < 0" for s in STAGES if (v := getattr(record, s)) is not None and v < 0]
    problems += [f"stages_ms.{s} {v:g} < 0" for s, v in record.stages_ms.items() if v < 0]
    if record.v2v_ms is not None and record.stages_ms:
        total = sum(record.stages_ms.values())
        if abs(total - record.v2v_ms) > _SUM_SLACK_MS:
            problems.append(f"stages_ms sum {total:.1f} != v2v_ms {record.v2v_ms:g}")
    if min_endpoint_ms is not None and record.endpoint_ms is not None and record.endpoint_ms < min_endpoint_ms:
        problems.append(f"endpoint_ms {record.endpoint_ms:g} < {min_endpoint_ms:g} (the end-of-speech silence)")
    problems += [f"{a} after {b}" for a, b in CAUSAL_ORDER if a in marks and b in marks and marks[a] > marks[b]]
    return problems
