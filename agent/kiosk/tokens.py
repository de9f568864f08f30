"""LiveKit access tokens for the kiosk page: one fresh room per call, with the agent dispatched to it.

The API secret signs the token here and never leaves this process: the page gets the server URL,
the token, and the names in it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from livekit.api import AccessToken, RoomAgentDispatch, RoomConfiguration, VideoGrants

from configs import Settings

ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")


class MissingCredentials(RuntimeError):
    """LiveKit's URL, key or secret is not set: no token can be minted."""


@dataclass(frozen=True, repr=False)
class LiveKitCredentials:
    url: str
    api_key: str
    api_secret: str

    def __repr__(self) -> str:  # a log line or traceback must not carry the secret
        return f"LiveKitCredentials(url={self.url!r}, api_key={self.api_key!r}, api_secret='***')"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> LiveKitCredentials:
        missing = [name for name in ENV if not env.get(name)]
        if missing:
            raise MissingCredentials(
                f"{', '.join(missing)} not set on the kiosk server: it cannot give out LiveKit tokens"
            )
        return cls(*(env[name] for name in ENV))


@dataclass(frozen=True)
class Grant:
    """What POST /api/token answers: where to connect, and the token to connect with."""

    url: str
    token: str
    room: str
    identity: str

    def to_json(self) -> dict[str, str]:
        return {"url": self.url, "token": self.token, "room": self.room, "identity": self.identity}


def mint(credentials: LiveKitCredentials, settings: Settings, *, name: str = "") -> Grant:
    """A token that joins a new room as a caller, the agent (`worker.agent_name`) dispatched to it.
    Random room and identity: a caller can neither pick nor guess another call's room."""
    room = f"{settings.kiosk.room_prefix}-{secrets.token_hex(6)}"
    identity = f"caller-{secrets.token_hex(4)}"
    token = (
        AccessToken(credentials.api_key, credentials.api_secret)
        .with_identity(identity)
        .with_name(name or identity)
        .with_ttl(timedelta(seconds=settings.kiosk.token_ttl_s))
        # a caller talks and listens: no room admin, no recording, no other room
        .with_grants(
            VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True, can_publish_data=True)
        )
    )
    if settings.worker.agent_name:  # empty: the worker takes every room by automatic dispatch
        dispatch = RoomAgentDispatch(agent_name=settings.worker.agent_name)
        token = token.with_room_config(RoomConfiguration(agents=[dispatch]))
    return Grant(url=credentials.url, token=token.to_jwt(), room=room, identity=identity)
