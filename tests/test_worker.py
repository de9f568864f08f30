"""What of the room path can run without a LiveKit server: env checks, tokens, registration."""

import pytest
from livekit import api

from agent.worker import WorkerConfigError, check_env, entrypoint, make_server


def test_missing_livekit_env_is_a_clear_error():
    with pytest.raises(WorkerConfigError, match="LIVEKIT_API_KEY, LIVEKIT_API_SECRET not set"):
        check_env({"LIVEKIT_URL": "ws://localhost:7880"})
    check_env({"LIVEKIT_URL": "ws://x", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s"})


def test_server_registers_our_entrypoint():
    server = make_server()
    assert server._entrypoint_fnc is entrypoint


def test_caller_token_grants_the_room():
    token = (
        api.AccessToken("devkey", "secret-secret-secret-secret-0123")
        .with_identity("caller-1")
        .with_grants(api.VideoGrants(room_join=True, room="support-42"))
        .to_jwt()
    )
    claims = api.TokenVerifier("devkey", "secret-secret-secret-secret-0123").verify(token)
    assert claims.identity == "caller-1"
    assert claims.video.room == "support-42" and claims.video.room_join


async def test_worker_serves_metrics_over_every_rooms_turns(tmp_path, monkeypatch, settings):
    """Job processes write turns per room; the worker's /metrics counts them all."""
    import asyncio

    import aiohttp

    from agent.worker import RUNS_ENV, rooms_dir, watch_rooms
    from latency import TurnLog, build_record
    from tests.ports import free_port

    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    port = free_port()
    settings = settings.model_copy(update={"latency": settings.latency.model_copy(update={"dashboard_port": port})})
    async with watch_rooms(settings), aiohttp.ClientSession() as http:
        for room in ("support-1", "support-2"):  # as two job processes would
            with TurnLog(rooms_dir() / room / "turns.jsonl") as log:
                log.write(build_record(room, 1, {"last_voiced": 0.0, "first_frame_out": 0.4}, 500.0))
        body = ""
        for _ in range(40):  # the follower polls every 0.25 s
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                body = await resp.text()
            if "halfsec_turns_total 2.0" in body:
                break
            await asyncio.sleep(0.1)
    assert "halfsec_turns_total 2.0" in body
    assert "halfsec_turn_v2v_seconds_count 2.0" in body
