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
