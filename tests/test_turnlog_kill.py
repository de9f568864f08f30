"""A writer killed with SIGKILL loses at most the turn in flight: every turn it finished reads back."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from latency import SCHEMA_VERSION, read_turns

REPO = Path(__file__).resolve().parents[1]

# A call that finishes `turns` turns, reports each once its write returned, then hangs mid-turn.
WRITER = """
import sys, time
from latency import TurnLog, build_record
path, turns, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with TurnLog(path) as log:
    n = 0
    while True:
        start = time.monotonic()
        if n == turns:
            print("in flight", flush=True)
            time.sleep(60)
        marks = {"last_voiced": start, "end_of_turn": start + 0.2, "first_frame_out": time.monotonic() + 0.3}
        # long lines: a write that could tear
        log.write(build_record("killed", n + 1, marks, 500.0, user_text="x" * 2000))
        n += 1
        print(n, flush=True)
        time.sleep(pause)
"""


def _writer(path: Path, turns: int, pause: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(turns), str(pause)], stdout=subprocess.PIPE, text=True, env=env
    )


def test_sigkill_mid_turn_keeps_every_finished_turn(tmp_path):
    path = tmp_path / "turns.jsonl"
    proc = _writer(path, turns=3, pause=0.0)
    assert [proc.stdout.readline().strip() for _ in range(4)] == ["1", "2", "3", "in flight"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    rows = list(read_turns(path))
    assert [r["turn"] for r in rows] == [1, 2, 3]
    assert all(r["schema"] == SCHEMA_VERSION and r["session_id"] == "killed" for r in rows)


def test_sigkill_at_any_moment_loses_no_reported_turn(tmp_path):
    # Killed while writing as fast as it can: whatever it reported finished is on disk, in order.
    path = tmp_path / "turns.jsonl"
    proc = _writer(path, turns=10**9, pause=0.0)
    for _ in range(200):
        reported = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    turns = [r["turn"] for r in read_turns(path)]
    assert turns == list(range(1, len(turns) + 1)) and len(turns) >= reported
