import json

import pytest

from latency import MILESTONES, SCHEMA_VERSION, TurnLog, TurnTracer, read_turns


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
    assert rows[1]["v2v_ms"] == 400.0 and rows[0]["schema"] == SCHEMA_VERSION == 2
    assert set(json.loads(path.read_text().splitlines()[0])) >= {
        "session_id", "turn", "user_text", "agent_text", "endpoint_ms", "stt_ms",
        "llm_ttft_ms", "tts_ttfb_ms", "v2v_ms",
    }  # fmt: skip


def test_preflight_transcript_is_a_milestone_with_its_stage():
    records = []
    tracer = TurnTracer("s1", records.append, clock=Clock())
    tracer.mark("last_voiced", 10.0)
    tracer.mark("preflight_transcript", 10.12)  # a streaming ASR: before the end of turn
    tracer.mark("end_of_turn", 10.2)
    tracer.mark("final_transcript", 10.22)
    record = tracer.close_turn()
    assert "preflight_transcript" in MILESTONES
    assert record.preflight_ms == 120.0 and record.stt_ms == 20.0
    assert record.marks_ms == {"last_voiced": 0.0, "preflight_transcript": 120.0, "end_of_turn": 200.0,
                               "final_transcript": 220.0}  # fmt: skip


def test_record_carries_the_budget_split_and_the_stage_to_blame():
    from latency import Budget

    records = []
    budget = Budget({"endpoint": 200, "stt": 30, "llm_first_token": 150, "first_sentence": 60,
                     "tts_first_audio": 50, "transport": 10}, total_ms=600)  # fmt: skip
    tracer = TurnTracer("s1", records.append, budget=budget, clock=Clock())
    for name, t in [
        ("last_voiced", 1.0), ("end_of_turn", 1.2), ("final_transcript", 1.25), ("llm_request", 1.26),
        ("llm_first_token", 1.36), ("tts_request", 1.40), ("tts_first_audio", 1.60), ("first_frame_out", 1.605),
    ]:  # fmt: skip
        tracer.mark(name, t)
    r = tracer.close_turn().to_json()
    assert r["stages_ms"] == {"endpoint": 200.0, "stt": 50.0, "llm_first_token": 110.0,
                              "first_sentence": 40.0, "tts_first_audio": 200.0, "transport": 5.0}  # fmt: skip
    assert sum(r["stages_ms"].values()) == r["v2v_ms"] == 605.0
    assert r["over_budget"] == ["tts_first_audio", "stt"]  # 150 ms over, then 20 ms over
    assert r["within_target"] is False and r["budget_ms"]["total"] == 600.0


def _lk(kind: str, speech_id: str | None, **extra):
    """A LiveKit metrics object as the session emits it (real classes, dumped as the tracer gets them)."""
    from livekit.agents import metrics as lk

    common = {"timestamp": 1.0, "metadata": None}
    if kind == "eou":
        m = lk.EOUMetrics(end_of_utterance_delay=0.2, transcription_delay=0.25,
                          on_user_turn_completed_delay=0.0, speech_id=speech_id, **common)  # fmt: skip
    elif kind == "llm":
        m = lk.LLMMetrics(label="openai", request_id="r", duration=1.0, ttft=extra.get("ttft", 0.1),
                          cancelled=False, completion_tokens=5, prompt_tokens=9, prompt_cached_tokens=0,
                          total_tokens=14, tokens_per_second=12.0, speech_id=speech_id, **common)  # fmt: skip
    elif kind == "tts":
        m = lk.TTSMetrics(label="kokoro", request_id="r", ttfb=extra.get("ttfb", 0.3), duration=0.5,
                          audio_duration=1.0, cancelled=False, characters_count=20, streamed=True,
                          speech_id=speech_id, **common)  # fmt: skip
    else:
        m = lk.STTMetrics(label="asr", request_id="r", duration=0.3, audio_duration=2.0, streamed=False, **common)

    class Event:  # MetricsCollectedEvent's shape
        metrics = m

    return Event()


def test_livekit_metrics_join_the_turn_by_speech_id():
    records = []
    tracer = TurnTracer("s1", records.append, clock=Clock())
    tracer.mark("last_voiced", 1.0)
    tracer.on_metrics_collected(_lk("llm", "speech_pre", ttft=0.9))  # preemptive run, thrown away
    tracer.mark("end_of_turn", 1.2)
    tracer.on_metrics_collected(_lk("stt", None))  # no speech id: not joined
    tracer.on_metrics_collected(_lk("eou", "speech_a"))
    tracer.on_metrics_collected(_lk("llm", "speech_a", ttft=0.1))
    tracer.on_metrics_collected(_lk("tts", "speech_a", ttfb=0.3))
    tracer.on_metrics_collected(_lk("tts", "speech_a", ttfb=0.2))  # a second chunk
    tracer.mark("first_frame_out", 1.9)
    first = tracer.close_turn()
    tracer.on_metrics_collected(_lk("tts", "speech_a"))  # late, after its turn was written: dropped
    tracer.mark("last_voiced", 3.0)
    tracer.on_metrics_collected(_lk("eou", "speech_b"))
    second = tracer.close_turn()

    lk1 = first.livekit
    assert lk1["speech_id"] == "speech_a"
    assert lk1["metrics"]["eou_metrics"]["transcription_delay"] == 0.25
    assert lk1["metrics"]["llm_metrics"]["ttft"] == 0.1  # not the preemptive run's 0.9
    assert [m["ttfb"] for m in lk1["metrics"]["tts_metrics"]] == [0.3, 0.2]
    assert second.livekit == {"speech_id": "speech_b", "metrics": {"eou_metrics": second.livekit["metrics"]["eou_metrics"]}}


def test_turn_without_eou_takes_the_speech_that_was_spoken():
    tracer = TurnTracer("s1", lambda r: None, clock=Clock())
    tracer.mark("last_voiced", 1.0)
    tracer.on_metrics_collected(_lk("llm", "spoken"))
    tracer.on_metrics_collected(_lk("tts", "spoken"))
    tracer.on_metrics_collected(_lk("llm", "discarded"))
    assert tracer.close_turn().livekit["speech_id"] == "spoken"
