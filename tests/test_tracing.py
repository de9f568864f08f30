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


def _reply(tracer: CallTracer, speech_id: str, marks: dict[str, float]) -> None:
    token = _CURRENT_SPEECH.set(SimpleNamespace(id=speech_id))
    try:
        for name, at in marks.items():
            tracer.mark(name, at)
    finally:
        _CURRENT_SPEECH.reset(token)


def _falsetto_first_part(ended_at: float) -> tuple[list, CallTracer]:
    """A falsetto clip's first part as a bench call fed it: the VAD hears speech from 1.0 s,
    Silero on the file 0.1 s of it; the turn ended at `ended_at` with a first final."""
    records: list = []
    tracer = CallTracer("call", records.append, ground_truth_io=True, clock=Clock())
    tracer.mark("speech_start", 1.0)
    tracer.mark("first_voiced", 1.2)
    tracer.mark("last_voiced", 1.3)
    tracer.mark("end_of_turn", ended_at)
    tracer.transcript("final_transcript", "i really", ended_at)
    return records, tracer


def _ended_before_its_clip() -> tuple[list, CallTracer]:
    """A clip whose soft last words the VAD never heard: it ended the turn at 2.0 s, a reply came."""
    records: list = []
    tracer = CallTracer("call", records.append, ground_truth_io=True, clock=Clock())
    tracer.mark("first_voiced", 1.0)
    tracer.mark("speech_start", 1.1)
    tracer.mark("end_of_turn", 2.0)
    tracer.transcript("final_transcript", "what do you make of", 2.0)
    _reply(tracer, "reply", {"llm_request": 2.05, "tts_first_audio": 2.5, "first_frame_out": 2.51})
    return records, tracer


@pytest.mark.parametrize("played_out_first", [False, True])
def test_a_clip_end_the_vad_never_heard_is_answered_by_the_reply_it_got(played_out_first):
    """The soft end of the clip (2.8 s) was fed after the VAD had ended its turn, and no speech
    start followed: the reply that played out whole is the clip's answer, and the record says
    the VAD ended the turn 800 ms before the voice did. Open on a turn of its own, the clip had
    no reply until the simulated caller gave up waiting (a 2-minute soak at two calls)."""
    records, tracer = _ended_before_its_clip()
    done = SimpleNamespace(id="reply", scheduled=True, interrupted=False)
    if played_out_first:
        tracer._on_speech_done(done)
        assert records == []  # the clip goes on: its turn waits for its end
        tracer.mark("last_voiced", 2.8)
    else:
        tracer.mark("last_voiced", 2.8)
        assert records == []
        tracer._on_speech_done(done)
    [record] = records
    assert record.marks_ms["last_voiced"] == 1800.0 and record.v2v_ms == -290.0
    assert record.endpoint_ms == -800.0 and "endpoint_ms -800 < 0" in record.invalid
    tracer.mark("first_voiced", 5.0)  # the next clip
    tracer.close()
    assert [r.marks_ms for r in records[1:]] == [{"first_voiced": 0.0}]


def test_a_clip_end_whose_speech_start_comes_late_is_still_the_next_turns():
    records, tracer = _ended_before_its_clip()
    tracer.mark("last_voiced", 2.8)
    tracer.mark("speech_start", 2.85)  # the VAD heard the words after the pause, late
    tracer._on_speech_done(SimpleNamespace(id="reply", scheduled=True, interrupted=True))
    tracer.mark("end_of_turn", 3.0)
    tracer.close()
    first, second = records
    assert "last_voiced" not in first.marks_ms and second.endpoint_ms == 200.0


def test_a_clip_whose_first_reply_was_cut_off_unheard_is_answered_by_the_reply_heard():
    """A bench call at two calls (2026-12-06): Silero on the file hears 0.1 s of a falsetto
    clip, the session's VAD hears it in two parts, a reply to the first part is cut off by the
    second before a sample of it plays, and the reply to the second is what the caller hears.
    The clip's voice marks go with the turn of the reply heard: its v2v runs from the clip's
    last voiced sample to that reply. On the first part's turn, the clip read as unanswered and
    the simulated caller spoke its next clip over the real reply."""
    records, tracer = _falsetto_first_part(ended_at=2.2)
    _reply(tracer, "first", {"llm_request": 2.25, "tts_request": 2.45, "tts_first_audio": 2.7})
    tracer.mark("speech_start", 2.5)  # the caller goes on: the reply is cut off unheard
    tracer._on_speech_done(SimpleNamespace(id="first", scheduled=True, interrupted=True))
    tracer.mark("end_of_turn", 3.3)
    tracer.transcript("final_transcript", "don't know how people talk like this", 3.3)
    _reply(tracer, "second", {"llm_request": 3.35, "tts_request": 3.5, "tts_first_audio": 3.8})
    _reply(tracer, "second", {"first_frame_out": 3.81, "agent_stopped": 6.0})
    assert [r.v2v_ms for r in records] == [None] and "last_voiced" not in records[0].marks_ms
    tracer._on_speech_done(SimpleNamespace(id="second", scheduled=True, interrupted=False))
    tracer.close()
    first, second = records
    assert first.interrupted and first.speech_id == "first" and "first_voiced" not in first.marks_ms
    assert second.speech_id == "second" and second.v2v_ms == 2510.0 and second.endpoint_ms == 2000.0
    assert second.marks_ms["first_voiced"] == 0.0 and first.invalid == [] and second.invalid == []


def test_a_clip_whose_reply_was_heard_keeps_its_marks_when_the_caller_goes_on():
    records, clock = [], Clock()
    tracer = CallTracer("call", records.append, ground_truth_io=True, clock=clock)
    tracer.mark("first_voiced", 1.0)
    tracer.mark("last_voiced", 2.0)
    tracer.mark("end_of_turn", 2.2)
    tracer.transcript("final_transcript", "hello", 2.2)
    _reply(tracer, "reply", {"llm_request": 2.25, "tts_first_audio": 2.6, "first_frame_out": 2.61})
    tracer.mark("speech_start", 2.7)  # a cough the VAD took for speech: the reply was heard
    tracer._on_speech_done(SimpleNamespace(id="reply", scheduled=True, interrupted=True))
    tracer.close()
    first = records[0]
    assert first.marks_ms["last_voiced"] == 1000.0 and first.v2v_ms == 610.0


def test_a_reply_cut_off_unheard_for_a_later_final_leaves_its_turn_to_the_next_reply():
    """LiveKit cut off the reply to a turn's first final when a later final added words, and
    made another: that one, the reply heard, is the turn's, and the caller's next clip a new turn."""
    records, tracer = _falsetto_first_part(ended_at=2.9)
    _reply(tracer, "first", {"llm_request": 3.0})
    tracer.transcript("final_transcript", "i really don't know how to do that", 3.2)
    tracer._on_speech_done(SimpleNamespace(id="first", scheduled=True, interrupted=True))
    assert records == []  # the turn waits for its reply
    _reply(tracer, "second", {"llm_request": 3.25, "tts_request": 3.4, "tts_first_audio": 3.7})
    _reply(tracer, "second", {"first_frame_out": 3.71, "agent_stopped": 5.0})
    tracer._on_speech_done(SimpleNamespace(id="second", scheduled=True, interrupted=False))
    tracer.mark("first_voiced", 5.8)  # the next clip
    tracer.close()
    first, second = records
    assert first.speech_id == "second" and first.v2v_ms == 2410.0 and not first.interrupted
    assert first.user_text == "i really don't know how to do that" and first.invalid == []
    assert second.marks_ms == {"first_voiced": 0.0}
