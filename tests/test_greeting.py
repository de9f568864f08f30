"""The agent speaks first (`agent.greeting`): a whole call through LiveKit's AgentSession with
scripted parts (tests/session_fakes.py). The greeting is heard, and the caller's first turn is
timed against its own reply, never against the greeting."""

import asyncio
import functools

from agent.session import build_session
from agent.sim.call import run_call
from tests.session_fakes import Reply, ScriptedAsr, ScriptedLLM, ScriptedTts, ScriptedVAD, speech
from tests.test_session_traced import assert_whole

GREETING = "Hello, you are through to the help line."


def greeting_first(settings):
    return settings.model_copy(update={"agent": settings.agent.model_copy(update={"greeting": GREETING})})


async def test_the_greeting_is_spoken_first_and_is_no_turns_reply(settings, tmp_path):
    settings = greeting_first(settings)
    tts, model = ScriptedTts(), ScriptedLLM({"What time is it?": Reply("It is noon.")})
    greeted = asyncio.Event()

    def build(settings, tracer):
        session, agent = build_session(
            settings, tracer, vad=ScriptedVAD(), asr=ScriptedAsr([["What time is it?"]]), tts_client=tts, model=model
        )

        @session.on("agent_state_changed")
        def _(ev) -> None:
            if ev.old_state == "speaking":  # the greeting played out: the caller answers it
                greeted.set()

        return session, agent

    async def after_the_greeting(turn: int) -> None:
        await asyncio.wait_for(greeted.wait(), 20)

    call = await run_call(
        settings, [speech(0.6)], tmp_path, reply_timeout_s=10.0, gap_s=0.3, build=build, before_turn=after_the_greeting
    )
    # the greeting played out before the caller spoke (`after_the_greeting` waited for it); the
    # other requests are the fallbacks' prerendered audio
    assert GREETING in " ".join(tts.requests)  # in clauses, as any reply
    [turn] = call.turns  # the greeting has no record of its own
    assert_whole(turn, settings)  # its v2v runs from the caller's voice to the reply, not the greeting
    assert (turn["user_text"], turn["agent_text"]) == ("What time is it?", "It is noon.")
    assert model.requests == ["What time is it?"]  # the greeting needed no LLM


async def test_without_a_greeting_the_agent_waits_for_the_caller(settings, tmp_path):
    tts = ScriptedTts()
    build = functools.partial(
        build_session, vad=ScriptedVAD(), asr=ScriptedAsr([["Hi."]]), tts_client=tts, model=ScriptedLLM()
    )
    call = await run_call(settings, [speech(0.6)], tmp_path, reply_timeout_s=10.0, gap_s=0.3, build=build)
    assert settings.agent.greeting is None and GREETING not in tts.requests
    assert len(call.turns) == 1
