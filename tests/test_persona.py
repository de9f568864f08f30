"""A call's persona from LiveKit metadata: good metadata changes the call's prompt, voice and
greeting; bad metadata is one clear log line and the profile's defaults, never an error."""

import json
import logging
from urllib.parse import urlparse

import pytest

from agent.persona import MAX_GREETING_CHARS, Persona, call_persona, parse_persona, with_known_voice
from tests.ports import free_port
from tests.tts_fakes import FakeKokoro, fake_service

ADA = {"system_prompt": "You are Ada, the bakery's assistant.", "voice": "bf_emma", "greeting": "Hi, Ada here."}


def test_a_persona_sets_the_calls_prompt_voice_and_greeting(settings, caplog):
    persona = parse_persona(json.dumps(ADA), "the job's metadata")
    call = persona.apply(settings)
    assert (call.llm.system_prompt, call.tts.voice, call.agent.greeting) == tuple(ADA.values())
    assert settings.tts.voice == "af_heart" and settings.agent.greeting is None  # the profile's are untouched
    assert call.llm.port == settings.llm.port and call.tts.speed == settings.tts.speed
    assert caplog.text == ""


def test_every_key_is_optional(settings):
    call = parse_persona('{"voice": "am_michael"}', "the room's metadata").apply(settings)
    assert call.tts.voice == "am_michael"
    assert (call.llm.system_prompt, call.agent.greeting) == (settings.llm.system_prompt, None)
    assert parse_persona("", "the room's metadata") == Persona() == parse_persona("  ", "x")


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ("{not json", "not JSON"),
        ('"just text"', "not a JSON object"),
        ('["af_bella"]', "not a JSON object"),
        ('{"voice": "af_bella", "tone": "warm"}', "unknown key 'tone' (known: system_prompt, voice, greeting)"),
        ('{"greeting": 5}', "greeting: Input should be a valid string"),
        ('{"voice": "Bella; rm -rf /"}', "voice: String should match pattern"),
        ('{"voice": "../af_bella"}', "voice: String should match pattern"),
        ('{"system_prompt": ""}', "system_prompt: String should have at least 1 character"),
        (json.dumps({"greeting": "a" * (MAX_GREETING_CHARS + 1)}), "greeting: String should have at most 300"),
    ],
)
def test_bad_metadata_is_one_log_line_and_the_defaults(settings, caplog, metadata, problem):
    with caplog.at_level(logging.WARNING, logger="halfsec.persona"):
        persona = parse_persona(metadata, "the job's metadata")
    assert persona == Persona()
    assert persona.apply(settings) == settings
    [record] = caplog.records
    assert record.getMessage().startswith("persona in the job's metadata ignored, the profile's defaults apply: ")
    assert problem in record.getMessage()
    assert "\n" not in record.getMessage()


def test_the_jobs_metadata_wins_over_the_rooms(caplog):
    room = json.dumps({"voice": "am_michael"})
    assert call_persona(json.dumps({"voice": "bf_emma"}), room).voice == "bf_emma"
    assert call_persona("", room).voice == "am_michael"  # no dispatch metadata: the room's
    # a bad job persona is not patched with the room's: the defaults, and the log says which
    assert call_persona('{"voice": 1}', room) == Persona()
    assert "persona in the job's metadata ignored" in caplog.text


async def test_a_voice_the_tts_lacks_is_dropped_and_one_it_has_kept(settings, caplog):
    async with fake_service(FakeKokoro()) as url:  # voices: af_heart, bf_emma
        here = settings.model_copy(update={"tts": settings.tts.model_copy(update={"port": urlparse(url).port})})
        assert (await with_known_voice(Persona(voice="bf_emma"), here)).voice == "bf_emma"
        assert caplog.text == ""
        dropped = await with_known_voice(Persona(voice="af_bella", greeting="Hi."), here)
    assert dropped == Persona(greeting="Hi.")
    assert "persona voice 'af_bella' ignored, the TTS has no such voice (it has af_heart, bf_emma)" in caplog.text


async def test_a_tts_that_does_not_answer_keeps_the_personas_voice(settings):
    down = settings.model_copy(update={"tts": settings.tts.model_copy(update={"port": free_port()})})
    assert (await with_known_voice(Persona(voice="af_bella"), down)).voice == "af_bella"
