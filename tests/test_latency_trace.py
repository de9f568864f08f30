import json

from latency import MILESTONES, SCHEMA_VERSION, Budget, TurnLog, build_record, read_turns
from latency.budget import DEFAULT_STAGE_BUDGETS_MS
from tests.test_call import RECORD_FIELDS

TURN = {
    "speech_start": 100.0,
    "last_voiced": 101.0,
    "end_of_turn": 101.25,
    "final_transcript": 101.30,
    "llm_request": 101.31,
    "llm_first_token": 101.36,
    "llm_first_sentence": 101.50,
    "tts_request": 101.51,
    "tts_first_audio": 101.60,
    "first_frame_out": 101.62,
}


def test_stages_from_marks():
    record = build_record("s1", 1, TURN, 500.0, user_text="hello", agent_text="hi there")
    assert record.endpoint_ms == 250.0 and record.stt_ms == 50.0
    assert record.llm_ttft_ms == 50.0 and record.tts_ttfb_ms == 90.0
    assert record.v2v_ms == 620.0 and record.within_target is False
    assert record.marks_ms["last_voiced"] == 1000.0
    assert (record.user_text, record.agent_text, record.turn) == ("hello", "hi there", 1)
    assert record.invalid == [] and record.schema == SCHEMA_VERSION == 4


def test_turn_log_appends_and_skips_torn_line(tmp_path):
    path = tmp_path / "turns.jsonl"
    with TurnLog(path) as log:
        for i in range(2):
            log.write(build_record("s1", i + 1, {"last_voiced": float(i), "first_frame_out": i + 0.4}, 500.0))
    with path.open("a") as f:
        f.write('{"session_id": "s1", "tur')  # a writer killed mid-line
    rows = list(read_turns(path))
    assert [r["turn"] for r in rows] == [1, 2]
    assert rows[1]["v2v_ms"] == 400.0
    assert set(json.loads(path.read_text().splitlines()[0])) >= RECORD_FIELDS | {
        "preemptive",
        "preflights",
        "invalid",
        "speech_id",
    }


def test_transcript_waits_are_never_negative():
    # The ASR's final (and the preflight it held) came before the session's VAD ended the turn:
    # the turn waited 0 ms on them, not -20.
    marks = {"last_voiced": 10.0, "preflight_transcript": 9.9, "final_transcript": 10.18, "end_of_turn": 10.2}
    record = build_record("s1", 1, marks, 500.0)
    assert record.preflight_ms == 0.0 and record.stt_ms == 0.0
    assert record.invalid == []


def test_record_carries_the_budget_split_and_the_stage_to_blame():
    budget = Budget(DEFAULT_STAGE_BUDGETS_MS, total_ms=600)  # endpoint 200, stt 30, ... transport 10
    marks = {
        "last_voiced": 1.0,
        "end_of_turn": 1.2,
        "final_transcript": 1.25,
        "llm_request": 1.26,
        "llm_first_token": 1.36,
        "tts_request": 1.40,
        "tts_first_audio": 1.60,
        "first_frame_out": 1.605,
    }
    r = build_record("s1", 1, marks, budget).to_json()
    assert r["stages_ms"] == {
        "endpoint": 200.0,
        "stt": 50.0,
        "llm_first_token": 110.0,
        "first_sentence": 40.0,
        "tts_first_audio": 200.0,
        "transport": 5.0,
    }
    assert sum(r["stages_ms"].values()) == r["v2v_ms"] == 605.0
    assert r["over_budget"] == ["tts_first_audio", "stt"]  # 150 ms over, then 20 ms over
    assert r["within_target"] is False and r["budget_ms"]["total"] == 600.0


def test_stages_sum_to_v2v_despite_rounding():
    # boundaries 0.04 ms past a rounding edge each: rounding stages alone would drift from v2v
    marks = {
        "last_voiced": 0.0,
        "end_of_turn": 0.20004,
        "final_transcript": 0.25006,
        "llm_first_token": 0.31249,
        "tts_request": 0.33351,
        "tts_first_audio": 0.41049,
        "first_frame_out": 0.41451,
    }
    record = build_record("s1", 1, marks, 500.0)
    assert abs(sum(record.stages_ms.values()) - record.v2v_ms) < 0.05
    assert record.invalid == []


def test_a_record_that_breaks_an_invariant_says_which():
    # an endpoint shorter than the VAD's silence, and TTS audio before its request
    marks = {
        "last_voiced": 1.0,
        "end_of_turn": 1.05,
        "tts_request": 1.5,
        "tts_first_audio": 1.4,
        "first_frame_out": 1.6,
    }
    record = build_record("s1", 1, marks, 500.0, min_endpoint_ms=168.0)
    assert "endpoint_ms 50 < 168 (the end-of-speech silence)" in record.invalid
    assert "tts_request after tts_first_audio" in record.invalid
    assert "tts_ttfb_ms -100 < 0" in record.invalid
    # audio out before the TTS made any: the critical path overshoots v2v
    early = build_record("s1", 1, {**marks, "tts_first_audio": 1.7}, 500.0)
    assert "stages_ms sum 700.0 != v2v_ms 600" in early.invalid
    assert "tts_first_audio after first_frame_out" in early.invalid


def test_an_interrupted_reply_says_how_soon_the_agent_went_quiet():
    marks = {"last_voiced": 1.0, "end_of_turn": 1.2, "first_frame_out": 2.0, "agent_stopped": 3.25}
    record = build_record("s1", 1, marks, 500.0, interrupted=True, next_voiced=3.0)
    assert record.agent_stopped_ms == 250.0 and record.interrupted
    assert build_record("s1", 1, marks, 500.0, next_voiced=3.0).agent_stopped_ms is None  # not interrupted


def test_milestones_are_the_user_then_the_reply():
    assert MILESTONES.index("last_voiced") < MILESTONES.index("llm_request") < MILESTONES.index("first_frame_out")
    assert "agent_stopped" in MILESTONES and "fallback" in MILESTONES
