"""A call's persona from LiveKit metadata: who the agent is on this call (its system prompt, voice,
greeting), so one worker serves several products without a profile each.

The job's metadata (set by an explicit dispatch: `lk dispatch create --metadata`, AgentDispatch's
API, a token's RoomConfiguration) wins; without one, the room's metadata is read. Either is JSON:

    {"system_prompt": "You are Ada, ...", "voice": "af_bella", "greeting": "Hi, Ada here."}

every key optional. Metadata is written by whoever creates rooms, not by us: anything wrong with it
(not JSON, an unknown key, a wrong type, too long, a voice the TTS does not have) is one log line
naming the problem, and the call goes on with the profile's defaults, never fails.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from configs import Settings
from services.tts.client import TtsClient

log = logging.getLogger("halfsec.persona")

# Kokoro's voice names: language and gender letters, then the name ("af_bella", "bm_george").
VOICE_NAME = r"^[a-z]{2}_[a-z0-9]{1,32}$"
# Long enough for a real persona; short enough to leave the history most of a small model's context.
MAX_PROMPT_CHARS = 2000
MAX_GREETING_CHARS = 300  # a greeting is a sentence or two: the caller waits for it to end
_VOICES_TIMEOUT_S = 1.0  # asking the TTS which voices it has: at call start, before the greeting


class Persona(BaseModel):
    """What the metadata may set; None keeps the profile's value."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    system_prompt: str | None = Field(default=None, min_length=1, max_length=MAX_PROMPT_CHARS)
    voice: str | None = Field(default=None, pattern=VOICE_NAME)
    greeting: str | None = Field(default=None, min_length=1, max_length=MAX_GREETING_CHARS)

    def apply(self, settings: Settings) -> Settings:
        """`settings` with this persona's values in place of the profile's."""
        llm, tts, agent = settings.llm, settings.tts, settings.agent
        if self.system_prompt is not None:
            llm = llm.model_copy(update={"system_prompt": self.system_prompt})
        if self.voice is not None:
            tts = tts.model_copy(update={"voice": self.voice})
        if self.greeting is not None:
            agent = agent.model_copy(update={"greeting": self.greeting})
        return settings.model_copy(update={"llm": llm, "tts": tts, "agent": agent})


def _problems(exc: ValidationError) -> str:
    known = ", ".join(Persona.model_fields)
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            out.append(f"unknown key {where!r} (known: {known})")
        elif err["type"] == "json_invalid":
            out.append(f"not JSON ({err['ctx'].get('error', err['msg'])})")
        elif err["type"] == "model_type":
            out.append("not a JSON object")
        else:
            out.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(out)


def parse_persona(metadata: str, source: str) -> Persona:
    """The persona in `metadata` (JSON; empty: none), read from `source` ("the job's metadata");
    a bad one is logged and gives the defaults."""
    if not metadata.strip():
        return Persona()
    try:
        return Persona.model_validate_json(metadata)
    except ValidationError as exc:
        log.warning("persona in %s ignored, the profile's defaults apply: %s", source, _problems(exc))
        return Persona()


def call_persona(job_metadata: str, room_metadata: str) -> Persona:
    """The job's persona if its metadata has one, else the room's."""
    if job_metadata.strip():
        return parse_persona(job_metadata, "the job's metadata")
    return parse_persona(room_metadata, "the room's metadata")


async def with_known_voice(persona: Persona, settings: Settings) -> Persona:
    """`persona`, less a voice the TTS service does not have (logged): it would fail every reply.
    A TTS that does not answer cannot say; the voice is kept (its outage has its own fallback)."""
    if persona.voice is None:
        return persona
    client = TtsClient(settings.tts.client_url, token=settings.token())
    try:
        async with asyncio.timeout(_VOICES_TIMEOUT_S):
            voices = await client.voices()
    except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as exc:  # no usable answer
        log.info("could not ask the TTS for its voices (%s): keeping the persona's voice %s", exc, persona.voice)
        return persona
    finally:
        await client.aclose()
    if persona.voice in voices:
        return persona
    log.warning(
        "persona voice %r ignored, the TTS has no such voice (it has %s): the profile's %s speaks",
        persona.voice,
        ", ".join(voices),
        settings.tts.voice,
    )
    return persona.model_copy(update={"voice": None})
