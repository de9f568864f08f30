"""A failing LLM or ASR degrades the call, never ends it: the caller hears a short apology instead."""

from agent.fallback import kept
from agent.sim.call import run_call
from services.tts.client import TtsClient
from services.tts.text.cuts import split_pieces
from services.tts.text.normalize import speakable
from tests.ports import free_port


async def test_unreachable_llm_gets_the_spoken_fallback_every_turn(services, settings, speech, tmp_path):
    dead = settings.model_copy(update={"llm": settings.llm.model_copy(update={"port": free_port()})})
    call = await run_call(dead, [wav for wav, _ in speech[3:5]], tmp_path)
    assert len(call.turns) == 2  # the session survived the first failure and took the next turn
    for turn in call.turns:
        assert turn["fallback"] is True
        assert turn["agent_text"] == settings.llm.fallback_text
        assert turn["v2v_ms"] is not None  # it was spoken, not just logged
        marks = turn["marks_ms"]
        # failing fast: no retry back-off between the request and the apology going to TTS
        assert marks["tts_request"] - marks["llm_request"] < 500, marks
        # heard within 2 s of the end of the turn: its audio was prerendered (agent/fallback.py)
        assert marks["first_frame_out"] - marks["end_of_turn"] < 2000, marks


async def test_unreachable_asr_gets_the_spoken_fallback_and_the_call_goes_on(services, settings, speech, tmp_path):
    dead = settings.model_copy(update={"asr": settings.asr.model_copy(update={"port": free_port()})})
    tts = TtsClient(settings.tts.client_url)
    before = (await tts.health())["pieces"]["synthesized"]
    texts = [settings.asr.fallback_text, settings.llm.fallback_text]
    if not kept(
        settings.tts.fallback_text, settings.tts.client_url
    ):  # the TTS's is made once per process: by this call?
        texts.append(settings.tts.fallback_text)
    call = await run_call(dead, [wav for wav, _ in speech[3:5]], tmp_path)
    made = (await tts.health())["pieces"]["synthesized"] - before
    await tts.aclose()
    assert len(call.turns) == 2
    for turn in call.turns:
        assert turn["fallback"] is True and turn["user_text"] == ""
        assert turn["agent_text"] == settings.asr.fallback_text
        assert turn["v2v_ms"] is not None
        assert turn["marks_ms"]["first_frame_out"] - turn["marks_ms"]["end_of_turn"] < 2000
    # The fallbacks were asked for once, at call start (the service synthesises them only if it
    # does not hold them yet from an earlier call: `keep`); the two turns played the ASR one
    # from memory.
    once = sum(len(split_pieces(speakable(t))) for t in texts)
    assert made <= once, (made, once)
