import pytest

from latency import Budget
from latency.budget import DEFAULT_STAGE_BUDGETS_MS, critical_path, over_budget


def test_default_budgets_are_the_issue_s_and_sum_to_the_total():
    b = Budget()
    assert dict(b.stages_ms) == {
        "endpoint": 200,
        "stt": 30,
        "llm_first_token": 150,
        "first_sentence": 60,
        "tts_first_audio": 50,
        "transport": 10,
    }
    assert sum(b.stages_ms.values()) == b.total_ms == 500


def test_stages_split_v2v_and_count_only_time_waited():
    # Preemptive generation: the first token lands before the final transcript, so the caller did
    # not wait on the LLM at all; the TTS starts on the first clause before the "sentence" mark.
    marks = {
        "last_voiced": 0.0,
        "end_of_turn": 0.18,
        "final_transcript": 0.30,
        "llm_request": 0.10,
        "llm_first_token": 0.25,
        "tts_request": 0.34,
        "llm_first_sentence": 0.50,
        "tts_first_audio": 0.42,
        "first_frame_out": 0.43,
    }
    stages = critical_path(marks)
    assert stages == {
        "endpoint": 180.0,
        "stt": 120.0,
        "llm_first_token": 0.0,
        "first_sentence": 40.0,
        "tts_first_audio": 80.0,
        "transport": 10.0,
    }
    assert sum(stages.values()) == pytest.approx(430.0)
    assert over_budget(stages, Budget()) == ["stt", "tts_first_audio"]  # 90 over, then 30 over


def test_a_missing_milestone_moves_its_time_to_the_next_stage():
    marks = {
        "last_voiced": 0.0,
        "end_of_turn": 100.0,
        "final_transcript": 150.0,
        "tts_request": 400.0,
        "tts_first_audio": 450.0,
        "first_frame_out": 455.0,
    }
    stages = critical_path(marks, scale=1.0)
    assert "llm_first_token" not in stages and stages["first_sentence"] == 250.0
    assert sum(stages.values()) == 455.0
    assert critical_path({"end_of_turn": 1.0}) == {}  # no start: nothing to split


def test_without_tts_request_the_first_sentence_mark_ends_the_stage():
    marks = {"last_voiced": 0.0, "llm_first_token": 100.0, "llm_first_sentence": 130.0, "first_frame_out": 200.0}
    assert critical_path(marks, scale=1.0)["first_sentence"] == 30.0


def test_inconsistent_budgets_are_refused():
    with pytest.raises(ValueError, match="over the 400 ms total"):
        Budget(total_ms=400)
    with pytest.raises(ValueError, match="unknown .*'tts'"):
        Budget({**DEFAULT_STAGE_BUDGETS_MS, "tts": 5})
    assert Budget.from_json(Budget(total_ms=800).to_json()) == Budget(total_ms=800)


def test_latency_imports_none_of_the_app():
    # Everything imports latency; it must import none of agent/, services/, configs/.
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, latency, latency.records, latency.report, latency.plots, latency.metrics, latency.dashboard\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'agent', 'services', 'configs'}))"
    )
    repo = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, check=True)
    assert out.stdout.strip() == "[]"
