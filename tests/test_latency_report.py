"""`halfsec report` on the records of a real demo run (schema 1) and on current ones."""

import json
import shutil
from pathlib import Path

import pytest

from agent.cli import main
from latency import Budget, build_record
from latency.records import load_records, upgrade
from latency.report import summarize

DEMO = Path(__file__).resolve().parent / "data" / "demo-turns-schema1.jsonl"  # a `make demo` run


def test_schema1_records_are_read_in_the_current_shape():
    rows = load_records(DEMO, Budget())
    assert [r["schema"] for r in rows] == [1, 1, 1]  # the file says what it was written as
    for r in rows:
        assert sum(r["stages_ms"].values()) == pytest.approx(r["v2v_ms"], abs=0.3)
        assert r["budget_ms"]["total"] == 500 and r["preflight_ms"] is None
    # turn 2: the TTS got its first clause before the LLM's first full sentence; it was the wait
    assert rows[1]["stages_ms"]["first_sentence"] == pytest.approx(4669.5 - 4094.1, abs=0.2)
    assert rows[1]["stages_ms"]["tts_first_audio"] == pytest.approx(2983.3, abs=0.2)
    assert rows[1]["over_budget"][0] == "tts_first_audio"
    # a looser budget judges the same turns differently
    assert upgrade(json.loads(DEMO.read_text().splitlines()[1]), Budget(total_ms=6000))["within_target"] is True


def test_summary_percentiles_share_and_worst_turns():
    s = summarize(load_records(DEMO, Budget()), Budget(), worst=2)
    assert (s["turns"], s["calls"]) == (3, 1)
    assert s["stages"]["v2v"]["p50"] == pytest.approx(6487.2)
    assert s["stages"]["v2v"]["p99"] == pytest.approx(6487.2 + 0.98 * (7912.3 - 6487.2), abs=0.01)  # interpolated
    assert s["stages"]["stt"]["over"] == 3 and s["stages"]["endpoint"]["over"] == 0
    assert s["within_budget"] == {"turns": 0, "of": 3, "share": 0.0}
    assert [w["turn"] for w in s["worst"]] == [3, 1]
    assert s["worst"][0]["over_budget"][0] == {
        "stage": "tts_first_audio",
        "ms": pytest.approx(5085, abs=1),
        "budget_ms": 50.0,
    }


def test_report_command_json_and_plots_over_a_run_directory(tmp_path, capsys):
    # A run directory with an old (schema 1) log and a current one from another call.
    shutil.copy(DEMO, tmp_path / "turns.jsonl")
    room = tmp_path / "rooms" / "room-1"
    room.mkdir(parents=True)
    clock = iter([0.0, 0.1, 0.12, 0.2, 0.3, 0.33, 0.38, 0.39])
    names = [
        "last_voiced",
        "end_of_turn",
        "final_transcript",
        "llm_request",
        "llm_first_token",
        "tts_request",
        "tts_first_audio",
        "first_frame_out",
    ]
    record = build_record("room-1", 1, {name: next(clock) for name in names}, 500.0)
    (room / "turns.jsonl").write_text(json.dumps(record.to_json()) + "\n")

    assert main(["report", str(tmp_path), "--json", "--plot", str(tmp_path / "plots" / "run.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["turns"], out["calls"]) == (4, 2)
    assert out["within_budget"]["turns"] == 1  # the 390 ms turn
    assert out["stages"]["v2v"]["n"] == 4
    assert out["invalid"] == 0
    for name in ("run-waterfall.png", "run-histogram.png"):
        png = tmp_path / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_report_command_prints_tables(capsys):
    assert main(["report", str(DEMO)]) == 0
    out = capsys.readouterr().out
    assert "tts_first_audio" in out and "within 500 ms: 0/3 turns (0%)" in out
    assert "5085/50" in out  # the worst turn's worst stage, against its budget


def test_report_counts_records_that_break_an_invariant(tmp_path, capsys):
    ok = build_record("c", 1, {"last_voiced": 0.0, "end_of_turn": 0.2, "first_frame_out": 0.6}, 500.0)
    bad = build_record("c", 2, {"last_voiced": 1.0, "end_of_turn": 0.9, "first_frame_out": 1.6}, 500.0)
    (tmp_path / "turns.jsonl").write_text("".join(json.dumps(r.to_json()) + "\n" for r in (ok, bad)))
    assert main(["report", str(tmp_path)]) == 0
    assert "1 record(s) break an invariant" in capsys.readouterr().out


def test_report_on_nothing_fails_clearly(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no turns.jsonl" in capsys.readouterr().err
