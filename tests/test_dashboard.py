"""The dashboard server: it follows turns.jsonl files as they grow and serves state, events, metrics."""

import asyncio
import json
import shutil
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from latency import Budget, build_record
from latency.dashboard import Dashboard, make_app
from latency.dashboard.follow import TurnFollower

DEMO = Path(__file__).resolve().parent / "data" / "demo-turns-schema1.jsonl"


# One turn's milestones (s): 345 ms voice to voice, every stage within budget.
FAST_MARKS = {
    "last_voiced": 0.0,
    "end_of_turn": 0.1,
    "final_transcript": 0.12,
    "llm_first_token": 0.25,
    "tts_request": 0.3,
    "tts_first_audio": 0.34,
    "first_frame_out": 0.345,
}


def fast_turn(session_id: str, turn_log: Path) -> dict:
    """Append one current-schema turn of 345 ms, every stage within budget, as an agent would."""
    record = build_record(session_id, 1, FAST_MARKS, 500.0, user_text="what time is it").to_json()
    assert record["over_budget"] == [] and record["v2v_ms"] == 345.0
    with turn_log.open("a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def test_follower_reads_whole_lines_only_and_new_files(tmp_path):
    follower = TurnFollower(tmp_path, Budget())
    assert follower.poll() == []  # nothing yet is fine
    shutil.copy(DEMO, tmp_path / "turns.jsonl")
    assert [r["turn"] for r in follower.poll()] == [1, 2, 3]
    assert follower.poll() == []
    line = json.dumps(fast_turn("late", tmp_path / "scratch.jsonl"))
    with (tmp_path / "turns.jsonl").open("a") as f:
        f.write(line[:40])  # a line being written
    assert follower.poll() == []
    with (tmp_path / "turns.jsonl").open("a") as f:
        f.write(line[40:] + "\n")
    room = tmp_path / "rooms" / "r1"
    room.mkdir(parents=True)
    fast_turn("r1", room / "turns.jsonl")  # a new call's file appears
    assert sorted(r["session_id"] for r in follower.poll()) == ["late", "r1"]


async def test_state_metrics_and_events_follow_the_log(tmp_path):
    log = tmp_path / "turns.jsonl"
    shutil.copy(DEMO, log)
    dashboard = Dashboard(log, Budget(), window=2)
    async with TestClient(TestServer(make_app(dashboard))) as client:
        events = await client.get("/api/events")
        first = json.loads((await events.content.readuntil(b"\n\n")).decode().removeprefix("data: "))
        assert first["reset"] and first["total"] == 3 and len(first["turns"]) == 3
        assert first["calls"][0]["turns"] == 3 and first["calls"][0]["most_overrun"] == "tts_first_audio"

        fast_turn("second-call", log)
        update = json.loads((await asyncio.wait_for(events.content.readuntil(b"\n\n"), 5)).decode()[6:])
        assert update["total"] == 4 and [t["session_id"] for t in update["turns"]] == ["second-call"]
        assert update["turns"][0]["stages_ms"]["endpoint"] == 100.0
        rolling = update["rolling"]  # the last 2 turns: demo turn 3 and the new one
        assert rolling["stages"]["v2v"]["n"] == 2 and rolling["within_budget"]["turns"] == 1
        assert [c["session_id"] for c in update["calls"]][0] == "second-call"  # most recent first
        events.close()

        state = await (await client.get("/api/state", params={"since": 3})).json()
        assert [t["turn"] for t in state["turns"]] == [1] and state["budget_ms"]["total"] == 500
        assert "livekit" not in state["turns"][0]

        metrics = await (await client.get("/metrics")).text()
        assert "halfsec_turns_total 4.0" in metrics
        assert "halfsec_turns_within_target_total 1.0" in metrics
        assert 'halfsec_turn_stage_over_budget_total{stage="stt"} 3.0' in metrics

        page = await (await client.get("/")).text()
        script = await (await client.get("/static/dashboard.js")).text()
        assert '<script type="module" src="/static/dashboard.js">' in page and "EventSource" in script
        assert "http" not in page.replace("http://www.w3.org", "")  # nothing from elsewhere
