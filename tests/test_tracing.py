"""CallTracer on its own: which turn a mark belongs to, and what it estimates without ground truth."""

from types import SimpleNamespace

import pytest
from livekit.agents.voice.events import UserStateChangedEvent

from agent.tracing import _CURRENT_SPEECH, CallTracer


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


def test_a_reply_first_heard_after_the_caller_spoke_again_is_its_own_turns():
    """The caller paused (the turn ended), the reply was made, and the caller went on before it
    was heard: its first frame, marked by the output outside the reply's task, belongs to the
    turn it answers. It was put on the caller's new turn, which then had a reply heard 2.4 s
    before its caller stopped (a bench call's record: v2v -2434 ms)."""
    records, clock = [], Clock()
    tracer = CallTracer("call", records.append, ground_truth_io=True, clock=clock)
    tracer.mark("first_voiced", 1.0)
    tracer.mark("end_of_turn", 2.0)  # a pause inside the utterance
    token = _CURRENT_SPEECH.set(SimpleNamespace(id="reply"))
    try:
        tracer.mark("llm_request", 2.0)
        tracer.mark("tts_first_audio", 2.4)
    finally:
        _CURRENT_SPEECH.reset(token)
    tracer.mark("first_voiced", 2.3)  # the caller goes on: a new turn
    tracer.mark("first_frame_out", 2.5)  # the output, outside the reply's task
    tracer.mark("agent_stopped", 2.5001)  # paused at once: the caller is talking
    tracer.mark("last_voiced", 4.0)
    tracer.mark("end_of_turn", 4.3)
    tracer.close()
    first, second = records
    assert first.marks_ms["first_frame_out"] == 1500.0 and first.speech_id == "reply"
    assert "first_frame_out" not in second.marks_ms and second.v2v_ms is None
    assert first.invalid == [] and second.invalid == []


def test_an_unknown_milestone_is_refused():
    with pytest.raises(ValueError, match="unknown milestone"):
        CallTracer("s", lambda r: None).mark("first_tokn")


def test_the_last_voiced_sample_after_a_pause_the_vad_ended_belongs_to_the_turn_it_goes_on_in():
    """One clip with a pause inside longer than the VAD's silence: the VAD ended a turn at the
    pause and a reply began; the caller's last voiced sample was fed before the VAD's speech start
    for the words after the pause (a short word, busy cores). It put the clip's end on the ended
    turn, whose interrupted reply then read as the clip's answer (a bench call at two calls: the
    caller spoke its next clip over the real reply)."""
    records, clock = [], Clock()
    tracer = CallTracer("call", records.append, ground_truth_io=True, clock=clock)
    tracer.mark("first_voiced", 1.0)
    tracer.mark("speech_start", 1.1)
    tracer.mark("end_of_turn", 2.0)  # a pause inside the clip
    tracer.transcript("final_transcript", "i really don't know")
    token = _CURRENT_SPEECH.set(SimpleNamespace(id="reply"))
    try:
        tracer.mark("llm_request", 2.1)  # a reply to the first half
    finally:
        _CURRENT_SPEECH.reset(token)
    tracer.mark("last_voiced", 2.6)  # the words after it, fed...
    tracer.mark("speech_start", 2.7)  # ...before the VAD said so
    tracer.mark("end_of_turn", 2.9)
    tracer.close()
    first, second = records
    assert "last_voiced" not in first.marks_ms and first.v2v_ms is None
    assert second.marks_ms["speech_start"] - second.marks_ms["last_voiced"] == 100.0
    assert second.endpoint_ms == 300.0
    assert first.invalid == [] and second.invalid == []


def test_the_last_voiced_sample_before_the_end_of_turn_stays_on_its_turn():
    records, clock = [], Clock()
    tracer = CallTracer("call", records.append, ground_truth_io=True, clock=clock)
    tracer.mark("first_voiced", 1.0)
    tracer.mark("end_of_turn", 2.2)  # marked late (the ASR's endpointer), at its own time
    tracer.mark("last_voiced", 2.0)
    tracer.close()
    [record] = records
    assert record.marks_ms["last_voiced"] == 1000.0 and record.endpoint_ms == 200.0


def test_a_turn_nothing_came_of_goes_on_when_the_caller_does():
    """The VAD ended a turn at a pause inside a clip, no transcript or reply came of it, and
    the caller went on: the ASR's one final and LiveKit's one reply are that turn's. Split, the
    clip's last voiced sample sat on a turn without a reply (a bench call's 'no reply'), and the
    simulated caller spoke its next clip over the real one."""
    records, clock = [], Clock()
    tracer = CallTracer("call", records.append, ground_truth_io=True, clock=clock)
    tracer.mark("speech_start", 1.0)
    tracer.mark("first_voiced", 1.2)
    tracer.mark("last_voiced", 1.4)  # Silero (fresh, on the file) hears little of a falsetto
    tracer.mark("end_of_turn", 2.1)  # the VAD's, at the pause
    tracer.mark("speech_start", 2.5)  # the caller goes on
    assert records == []
    tracer.mark("end_of_turn", 3.2)
    tracer.transcript("final_transcript", "i really don't know how people talk like this")
    tracer.mark("first_voiced", 5.0)  # the next clip: a new turn
    tracer.close()
    first, second = records
    assert first.marks_ms["last_voiced"] == 400.0 and first.endpoint_ms == 1800.0
    assert first.user_text.startswith("i really") and first.invalid == []
    assert second.marks_ms == {"first_voiced": 0.0}
