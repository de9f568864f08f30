"""Per-turn latency trace: one monotonic timestamp per pipeline milestone, one record per turn.

Whoever sees a milestone calls `TurnTracer.mark(name)`: the simulated caller (last voiced sample),
session events (end of turn, transcripts), the agent's LLM/TTS nodes, the plugins (service
request/response) and the audio output (first frame out). The first mark of a name in a turn wins,
so later sentences of the same reply do not overwrite the first one.

This module imports nothing from the rest of halfsec: everything else imports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 1

# Milestones in pipeline order. A turn's record holds whichever of them were seen.
MILESTONES = (
    "speech_start",  # VAD: user started speaking
    "last_voiced",  # the last voiced input sample was fed (ground truth, from the audio input)
    "end_of_turn",  # VAD/endpointing: the user's turn is over
    "preflight_transcript",  # transcript decoded in the early silence (services/asr)
    "stt_request",  # audio sent to services/asr
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

# Stage durations in milliseconds: name -> (from milestone, to milestone).
STAGES: dict[str, tuple[str, str]] = {
    "endpoint_ms": ("last_voiced", "end_of_turn"),
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
    stt_ms: float | None = None
    llm_ttft_ms: float | None = None
    llm_first_sentence_ms: float | None = None
    tts_ttfb_ms: float | None = None
    v2v_ms: float | None = None
    interrupted: bool = False
    fallback: bool = False
    within_target: bool | None = None
    # Milestones as milliseconds after the turn's first milestone, for waterfalls.
    marks_ms: dict[str, float] = field(default_factory=dict)
    # LiveKit's own per-message metrics, kept as reported, for cross-checking.
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


class TurnTracer:
    """Collects the milestones of one call, turn by turn, and hands each finished turn to `sink`."""

    def __init__(
        self,
        session_id: str,
        sink: Callable[[TurnRecord], None],
        *,
        target_ms: float = 500.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session_id = session_id
        self._sink = sink
        self._target_ms = target_ms
        self._clock = clock
        self._turn: _Turn | None = None
        self._count = 0

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

    @property
    def open(self) -> bool:
        return self._turn is not None

    def close_turn(self) -> TurnRecord | None:
        """Finish the open turn (if any) and hand its record to the sink."""
        turn, self._turn = self._turn, None
        if turn is None or not turn.marks:
            return None
        self._count += 1
        record = build_record(self.session_id, self._count, turn.marks, self._target_ms)
        record.user_text, record.agent_text, record.livekit = (
            turn.user_text,
            turn.agent_text,
            turn.livekit,
        )
        self._sink(record)
        return record


def build_record(
    session_id: str, turn: int, marks: dict[str, float], target_ms: float
) -> TurnRecord:
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
    if record.v2v_ms is not None:
        record.within_target = record.v2v_ms <= target_ms
    return record
