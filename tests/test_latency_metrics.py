"""Prometheus metrics from turn records, on a private registry and from an agent process."""

import subprocess
import sys
from pathlib import Path
from urllib.request import urlopen

from prometheus_client import CollectorRegistry

from latency import build_record
from latency.metrics import TurnMetrics

REPO = Path(__file__).resolve().parents[1]


def _turn(sink, marks: dict[str, float], **fields):
    sink(build_record("s1", 1, marks, 500.0, **fields))


def test_records_feed_histograms_and_counters():
    metrics = TurnMetrics(CollectorRegistry())
    tracer = metrics.observe
    _turn(
        tracer,
        {
            "last_voiced": 0.0,
            "end_of_turn": 0.25,
            "final_transcript": 0.27,
            "llm_first_token": 0.35,
            "tts_request": 0.38,
            "tts_first_audio": 0.41,
            "first_frame_out": 0.415,
        },
    )
    _turn(tracer, {"last_voiced": 1.0, "end_of_turn": 1.1}, interrupted=True)  # cut off before any reply
    _turn(tracer, {"last_voiced": 2.0, "end_of_turn": 2.1, "fallback": 2.5, "first_frame_out": 3.0})
    _turn(tracer, {"last_voiced": 4.0, "end_of_turn": 4.1})  # no reply at all: an error
    value = metrics.registry.get_sample_value
    assert value("halfsec_turn_invalid_records_total") == 0
    _turn(tracer, {"last_voiced": 5.0, "end_of_turn": 4.9})  # ended before the caller stopped
    assert value("halfsec_turn_invalid_records_total") == 1
    assert value("halfsec_turn_errors_total") == 2
    assert value("halfsec_turns_total") == 5
    assert value("halfsec_turn_interruptions_total") == 1
    assert value("halfsec_turn_fallbacks_total") == 1
    assert value("halfsec_turns_within_target_total") == 1
    assert value("halfsec_turn_v2v_seconds_count") == 2
    assert value("halfsec_turn_v2v_seconds_bucket", {"le": "0.5"}) == 1
    assert value("halfsec_turn_stage_seconds_count", {"stage": "endpoint"}) == 5
    assert value("halfsec_turn_stage_seconds_bucket", {"stage": "endpoint", "le": "0.2"}) == 4  # 250 ms is not
    assert value("halfsec_turn_stage_over_budget_total", {"stage": "endpoint"}) == 1
    # the fallback turn marked nothing between end of turn and audio out: the wait lands on transport
    assert value("halfsec_turn_stage_over_budget_total", {"stage": "transport"}) == 1
    assert value("halfsec_turn_stage_seconds_count", {"stage": "transport"}) == 2
    assert value("halfsec_turn_stage_seconds_count", {"stage": "stt"}) == 1


def test_an_agent_process_exposes_its_turns(tmp_path):
    # What an agent does: count turns from its tracer's sink and serve them on its own port.
    code = """
import socket, sys
from latency import build_record
from latency.metrics import observe_turn, start_metrics_server
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
start_metrics_server(port)
observe_turn(build_record("agent", 1, {"last_voiced": 0.0, "end_of_turn": 0.2, "first_frame_out": 0.9}, 500.0))
print(port, flush=True)
sys.stdin.read()
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    try:
        port = int(proc.stdout.readline())
        body = urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        proc.communicate("", timeout=10)
    assert "halfsec_turns_total 1.0" in body
    assert 'halfsec_turn_v2v_seconds_bucket{le="1.0"} 1.0' in body
    assert "python_gc_objects_collected_total" in body  # the process's own metrics come along
