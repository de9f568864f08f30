import json

import pytest

from latency import MILESTONES, TurnLog, TurnTracer, read_turns


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_stages_from_marks_and_first_mark_wins():
    records, clock = [], Clock()
    tracer = TurnTracer("s1", records.append, target_ms=500, clock=clock)
    for name, t in [
        ("speech_start", 100.0), ("last_voiced", 101.0), ("end_of_turn", 101.25),
        ("final_transcript", 101.30), ("llm_request", 101.31), ("llm_first_token", 101.36),
        ("llm_first_sentence", 101.50), ("tts_request", 101.51), ("tts_first_audio", 101.60),
        ("first_frame_out", 101.62),
    ]:  # fmt: skip
        tracer.mark(name, t)
    tracer.mark("tts_first_audio", 102.5)  # a later sentence's audio must not overwrite the first
    tracer.set_user_text("hello")
    tracer.set_agent_text("hi there")
    record = tracer.close_turn()
    assert records == [record]
    assert record.endpoint_ms == 250.0 and record.stt_ms == 50.0
    assert record.llm_ttft_ms == 50.0 and record.tts_ttfb_ms == 90.0
    assert record.v2v_ms == 620.0 and record.within_target is False
    assert record.marks_ms["last_voiced"] == 1000.0
    assert (record.user_text, record.agent_text, record.turn) == ("hello", "hi there", 1)


def test_new_speech_after_end_of_turn_starts_a_new_turn():
    records = []
    tracer = TurnTracer("s1", records.append, clock=Clock())
    tracer.mark("speech_start", 1.0)
    tracer.mark("speech_start", 1.2)  # VAD flicker inside one utterance: same turn
    tracer.mark("end_of_turn", 2.0)
    tracer.mark("speech_start", 3.0)  # the user speaks again (no reply came)
    assert [r.turn for r in records] == [1]
    assert records[0].v2v_ms is None and records[0].within_target is None
    assert tracer.open


def test_unknown_milestone_is_refused():
    tracer = TurnTracer("s1", lambda r: None)
    with pytest.raises(ValueError, match="unknown milestone"):
        tracer.mark("first_tokn")
    assert "first_frame_out" in MILESTONES


def test_turn_log_appends_and_skips_torn_line(tmp_path):
    path = tmp_path / "turns.jsonl"
    tracer_records = []
    tracer = TurnTracer("s1", tracer_records.append, clock=Clock())
    with TurnLog(path) as log:
        for i in range(2):
            tracer.mark("last_voiced", float(i))
            tracer.mark("first_frame_out", i + 0.4)
            log.write(tracer.close_turn())
    with path.open("a") as f:
        f.write('{"session_id": "s1", "tur')  # a writer killed mid-line
    rows = list(read_turns(path))
    assert [r["turn"] for r in rows] == [1, 2]
    assert rows[1]["v2v_ms"] == 400.0 and rows[0]["schema"] == 1
    assert set(json.loads(path.read_text().splitlines()[0])) >= {
        "session_id", "turn", "user_text", "agent_text", "endpoint_ms", "stt_ms",
        "llm_ttft_ms", "tts_ttfb_ms", "v2v_ms",
    }  # fmt: skip
