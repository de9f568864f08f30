"""CallTracer on its own: which turn a mark belongs to, and what it estimates without ground truth."""

import pytest
from livekit.agents.voice.events import UserStateChangedEvent

from agent.tracing import CallTracer


class Clock:
    t = 10.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize("detection", ["vad", "stt"])
def test_in_a_room_the_vad_estimates_the_voice_and_only_the_owner_ends_the_turn(detection):
    records, clock = [], Clock()
    tracer = CallTracer("room", records.append, end_of_turn_by=detection, vad_silence_s=0.2, clock=clock)
    tracer._on_user_state(UserStateChangedEvent(old_state="listening", new_state="speaking"))
    clock.t = 12.0
    tracer._on_user_state(UserStateChangedEvent(old_state="speaking", new_state="listening"))
    if detection == "stt":
        clock.t = 12.3
        tracer.mark("end_of_turn")  # the STT plugin, on the ASR service's endpoint
    tracer.transcript("final_transcript", "hello")
    tracer.close()
    [record] = records
    assert record.marks_ms["last_voiced"] == 1800.0  # 12.0 - 0.2, after speech began at 10.0
    assert record.endpoint_ms == (200.0 if detection == "vad" else 500.0)
    assert record.user_text == "hello" and record.invalid == []


def test_a_new_utterance_opens_a_new_turn_only_after_the_last_one_ended():
    records, clock = [], Clock()
    tracer = CallTracer("call", records.append, ground_truth_io=True, clock=clock)
    tracer.mark("first_voiced", 1.0)
    tracer.mark("speech_start", 1.05)
    tracer.mark("speech_start", 1.2)  # VAD flicker inside one utterance: same turn
    tracer.mark("last_voiced", 2.0)
    tracer.mark("end_of_turn", 2.2)
    tracer.mark("first_voiced", 3.0)  # the caller speaks again (no reply came): a new turn
    assert [r.turn for r in records] == [1] and records[0].v2v_ms is None
    tracer.close()
    assert [r.turn for r in records] == [1, 2] and records[1].marks_ms == {"first_voiced": 0.0}


def test_an_unknown_milestone_is_refused():
    with pytest.raises(ValueError, match="unknown milestone"):
        CallTracer("s", lambda r: None).mark("first_tokn")
