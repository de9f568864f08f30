"""Per-turn latency trace: one monotonic timestamp per pipeline milestone, one record per turn.

Whoever sees a milestone calls `TurnTracer.mark(name)`: the simulated caller (last voiced sample),
session events (end of turn, transcripts), the agent's LLM/TTS nodes, the plugins (service
request/response) and the audio output (first frame out). The first mark of a name in a turn wins,
so later sentences of the same reply do not overwrite the first one.

LiveKit's own metrics (end of utterance, LLM, TTS) carry the id of the speech they belong to; the
tracer joins them to the turn whose reply that speech was (`add_livekit_event`).

This module imports nothing from the rest of halfsec: everything else imports it.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .budget import Budget, critical_path, over_budget

# 2: preflight_transcript/preflight_ms, stages_ms, budget_ms, over_budget, livekit.speech_id/metrics.
# Records of older versions are read through `latency.records.upgrade`.
SCHEMA_VERSION = 2

# Milestones in pipeline order. A turn's record holds whichever of them were seen.
MILESTONES = (
    "speech_start",  # VAD: user started speaking
    "last_voiced",  # the last voiced input sample was fed (ground truth, from the audio input)
    "end_of_turn",  # VAD/endpointing: the user's turn is over
    "stt_request",  # audio sent to services/asr
    # A streaming ASR's early transcript, good enough to start the LLM on (preemptive generation);
    # it may land before end_of_turn.
    "preflight_transcript",
    "final_transcript",  # transcript back from services/asr
    "llm_request",  # chat request sent to the LLM
    "llm_first_token",
    "llm_first_sentence",  # enough text for the first TTS chunk
    "tts_request",  # first text sent to services/tts
    "tts_first_audio",  # first PCM back from services/tts
    "first_frame_out",  # first agent audio frame handed to the room / audio output
    "agent_speech_end",
    "interrupted",
    "fallback",  # a component failed and the caller heard the fallback instead
)

# Component durations in milliseconds: name -> (from milestone, to milestone). They may overlap;
# `budget.critical_path` is the split of v2v_ms into stages that do not.
STAGES: dict[str, tuple[str, str]] = {
    "endpoint_ms": ("last_voiced", "end_of_turn"),
    # how soon after the caller stopped a transcript existed to start the LLM on
    "preflight_ms": ("last_voiced", "preflight_transcript"),
    "stt_ms": ("end_of_turn", "final_transcript"),
    "llm_ttft_ms": ("llm_request", "llm_first_token"),
    "llm_first_sentence_ms": ("llm_request", "llm_first_sentence"),
    "tts_ttfb_ms": ("tts_request", "tts_first_audio"),
    "v2v_ms": ("last_voiced", "first_frame_out"),
}


@dataclass
class TurnRecord:
    """One line of turns.jsonl."""

    session_id: str
    turn: int
    user_text: str = ""
    agent_text: str = ""
    endpoint_ms: float | None = None
    preflight_ms: float | None = None
    stt_ms: float | None = None
    llm_ttft_ms: float | None = None
    llm_first_sentence_ms: float | None = None
    tts_ttfb_ms: float | None = None
    v2v_ms: float | None = None
    interrupted: bool = False
    fallback: bool = False
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
    # LiveKit's own metrics, kept as reported, for cross-checking: per message ("user",
    # "assistant"), and those of the turn's speech ("speech_id"; "metrics": by type).
    livekit: dict[str, Any] = field(default_factory=dict)
    wall_time: float = 0.0
    schema: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Turn:
    marks: dict[str, float] = field(default_factory=dict)
    user_text: str = ""
    agent_text: str = ""
    livekit: dict[str, Any] = field(default_factory=dict)
    speech_ids: list[str] = field(default_factory=list)  # in the order LiveKit reported them
    eou_speech_id: str | None = None


# LiveKit metrics are kept per speech until its turn closes; a preemptive generation that was
# thrown away leaves its metrics behind, so only this many speeches are kept.
_MAX_PENDING_SPEECHES = 16


class TurnTracer:
    """Collects the milestones of one call, turn by turn, and hands each finished turn to `sink`."""

    def __init__(
        self,
        session_id: str,
        sink: Callable[[TurnRecord], None],
        *,
        target_ms: float = 500.0,
        budget: Budget | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session_id = session_id
        self._sink = sink
        self._budget = budget or Budget(total_ms=target_ms)
        self._clock = clock
        self._turn: _Turn | None = None
        self._count = 0
        self._speech_metrics: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._written_speeches: deque[str] = deque(maxlen=_MAX_PENDING_SPEECHES)

    def now(self) -> float:
        return self._clock()

    def mark(self, name: str, at: float | None = None) -> None:
        if name not in MILESTONES:
            raise ValueError(f"unknown milestone {name!r}")
        if name == "speech_start" and self._turn is not None and "end_of_turn" in self._turn.marks:
            # The user speaks again after their last turn ended: that turn is over.
            self.close_turn()
        turn = self._turn = self._turn or _Turn()
        turn.marks.setdefault(name, self.now() if at is None else at)

    def set_user_text(self, text: str) -> None:
        turn = self._turn = self._turn or _Turn()
        turn.user_text = f"{turn.user_text} {text}".strip()

    def set_agent_text(self, text: str) -> None:
        if self._turn is not None:
            self._turn.agent_text = f"{self._turn.agent_text} {text}".strip()

    def add_livekit_metrics(self, role: str, metrics: dict[str, Any]) -> None:
        if self._turn is not None and metrics:
            self._turn.livekit[role] = metrics

    def add_livekit_event(self, metrics: Mapping[str, Any]) -> None:
        """One of LiveKit's metrics (as a dict, e.g. `EOUMetrics.model_dump()`), joined by speech id.

        The turn's speech is the one its end-of-utterance metrics name (LiveKit creates it for the
        user's turn); failing that, the last speech of the turn that produced TTS audio, else the
        last one seen. Metrics that arrive after their turn was written are dropped.
        """
        speech_id, kind = metrics.get("speech_id"), str(metrics.get("type", "metrics"))
        if not speech_id or speech_id in self._written_speeches:
            return  # STT/VAD metrics belong to no speech
        per_speech = self._speech_metrics.setdefault(speech_id, {})
        self._speech_metrics.move_to_end(speech_id)
        while len(self._speech_metrics) > _MAX_PENDING_SPEECHES:
            self._speech_metrics.popitem(last=False)
        if kind in per_speech:  # e.g. one TTS metric per spoken chunk: keep them all
            previous = per_speech[kind]
            per_speech[kind] = [*(previous if isinstance(previous, list) else [previous]), dict(metrics)]
        else:
            per_speech[kind] = dict(metrics)
        turn = self._turn
        if turn is None:
            return  # kept until a turn claims it (its end-of-utterance metrics name it)
        if speech_id not in turn.speech_ids:
            turn.speech_ids.append(speech_id)
        if kind == "eou_metrics" and turn.eou_speech_id is None:
            turn.eou_speech_id = speech_id

    def on_metrics_collected(self, event: Any) -> None:
        """Handler for AgentSession's "metrics_collected" event (a MetricsCollectedEvent)."""
        metrics = event.metrics
        self.add_livekit_event(metrics.model_dump() if hasattr(metrics, "model_dump") else dict(metrics))

    def _join_speech(self, turn: _Turn) -> None:
        spoke = [s for s in turn.speech_ids if "tts_metrics" in self._speech_metrics.get(s, {})]
        speech_id = turn.eou_speech_id or (spoke or turn.speech_ids or [None])[-1]
        if speech_id is None:
            return
        turn.livekit["speech_id"] = speech_id
        turn.livekit["metrics"] = self._speech_metrics.pop(speech_id, {})
        self._written_speeches.append(speech_id)

    @property
    def open(self) -> bool:
        return self._turn is not None

    def close_turn(self) -> TurnRecord | None:
        """Finish the open turn (if any) and hand its record to the sink."""
        turn, self._turn = self._turn, None
        if turn is None or not turn.marks:
            return None
        self._count += 1
        self._join_speech(turn)
        record = build_record(self.session_id, self._count, turn.marks, self._budget)
        record.user_text, record.agent_text, record.livekit = (
            turn.user_text,
            turn.agent_text,
            turn.livekit,
        )
        self._sink(record)
        return record


def build_record(
    session_id: str, turn: int, marks: dict[str, float], budget: Budget | float
) -> TurnRecord:
    if not isinstance(budget, Budget):  # a bare v2v target, as schema 1 took
        budget = Budget(total_ms=budget)
    record = TurnRecord(session_id=session_id, turn=turn, wall_time=time.time())
    for stage, (start, end) in STAGES.items():
        if start in marks and end in marks:
            setattr(record, stage, round((marks[end] - marks[start]) * 1000.0, 1))
    origin = min(marks.values())
    record.marks_ms = {
        name: round((marks[name] - origin) * 1000.0, 1) for name in MILESTONES if name in marks
    }
    record.interrupted = "interrupted" in marks
    record.fallback = "fallback" in marks
    record.stages_ms = critical_path(marks)
    record.over_budget = over_budget(record.stages_ms, budget)
    record.budget_ms = budget.to_json()
    if record.v2v_ms is not None:
        record.within_target = record.v2v_ms <= budget.total_ms
    return record
