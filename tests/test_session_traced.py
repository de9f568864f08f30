"""Whole calls through LiveKit's AgentSession with scripted parts (tests/session_fakes.py): each
script asserts the record the tracer wrote for every turn.

The plugins, the agent's nodes, the tracer and the simulated caller are the real ones; the VAD,
the services' clients and the LLM follow the script. Times are real (the caller speaks in real
time), so durations are asserted within bounds and everything else exactly.
"""

import functools

import pytest

from agent.session import build_session
from agent.sim.call import run_call
from tests.session_fakes import UNHEARD, Reply, ScriptedAsr, ScriptedLLM, ScriptedTts, ScriptedVAD, speech

REPLY_MARKS = {
    "llm_request",
    "llm_first_token",
    "llm_first_sentence",
    "tts_request",
    "tts_first_audio",
    "first_frame_out",
    "agent_stopped",
}


async def scripted_call(
    settings,
    tmp_path,
    utterances,
    texts,
    replies,
    asr_endpoint_s=0.2,
    unheard_after_s=0.0,
    final_after_s=0.0,
    **options,
):
    model = ScriptedLLM(replies)
    tts = ScriptedTts()
    asr = ScriptedAsr(texts, endpoint_s=asr_endpoint_s, unheard_after_s=unheard_after_s, final_after_s=final_after_s)
    build = functools.partial(build_session, vad=ScriptedVAD(), asr=asr, tts_client=tts, model=model)
    call = await run_call(settings, utterances, tmp_path, reply_timeout_s=10.0, gap_s=0.3, build=build, **options)
    return call, model, tts


def assert_whole(turn, settings):
    """A turn answered start to finish: every milestone, the invariants, the stages adding up."""
    assert turn["invalid"] == [], turn["invalid"]
    assert REPLY_MARKS | {"last_voiced", "end_of_turn", "final_transcript"} <= set(turn["marks_ms"])
    assert settings.vad.min_silence_s * 1000 - 32 <= turn["endpoint_ms"] < 400
    assert sum(turn["stages_ms"].values()) == pytest.approx(turn["v2v_ms"], abs=0.05)
    assert not turn["interrupted"] and not turn["fallback"] and turn["speech_id"]


async def test_a_plain_turn(settings, tmp_path, caplog):
    call, model, _ = await scripted_call(
        settings, tmp_path, [speech(0.6)], [["What time is it?"]], {"What time is it?": Reply("It is noon.")}
    )
    [turn] = call.turns
    assert_whole(turn, settings)
    # LiveKit's own metrics of the answering speech, taken without its deprecated session event
    metrics = turn["livekit"]["metrics"]
    assert metrics["llm_metrics"]["speech_id"] == turn["speech_id"] == metrics["tts_metrics"]["speech_id"]
    assert metrics["llm_metrics"]["ttft"] > 0 and metrics["tts_metrics"]["audio_duration"] > 0
    assert "deprecated" not in caplog.text
    assert (turn["user_text"], turn["agent_text"]) == ("What time is it?", "It is noon.")
    assert turn["preflights"] == 1 and "preflight_transcript" in turn["marks_ms"]
    # the preflight started the reply before the turn was confirmed, and it was used
    assert turn["preemptive"] == {"started": 1, "used": True, "discarded_ms": 0.0}
    assert model.requests == ["What time is it?"]
    assert 200 < turn["v2v_ms"] < 1500


async def test_a_discarded_preemptive_generation_is_counted_not_timed(settings, tmp_path):
    """A pause inside the utterance: the ASR's preflight there starts a reply to half the
    sentence, which LiveKit throws away when the rest comes. The record times the reply that
    was spoken, counts the other and its wasted time."""
    slow = Reply("Which time?", ttft_s=0.4)
    call, model, _ = await scripted_call(
        settings,
        tmp_path,
        [speech(0.5, 0.1, 0.5)],
        [["What time", "What time is it?"]],
        {"What time": slow, "What time is it?": Reply("It is noon.")},
    )
    [turn] = call.turns
    assert_whole(turn, settings)
    assert model.requests == ["What time", "What time is it?"]
    assert turn["agent_text"] == "It is noon." and turn["preflights"] == 2
    pre = turn["preemptive"]
    assert pre["started"] == 2 and pre["used"] is True and 50 < pre["discarded_ms"] < 1000
    marks = turn["marks_ms"]
    # timed from the preflight that became the final, and the LLM request made on it
    assert marks["llm_request"] >= marks["preflight_transcript"] > marks["last_voiced"] - 1
    assert turn["preflight_ms"] < 100 and turn["llm_ttft_ms"] < 300


async def test_a_barge_in_flags_the_interrupted_turn(settings, tmp_path):
    long_reply = Reply("One two three four five six seven eight nine ten eleven twelve.")
    call, _, _ = await scripted_call(
        settings,
        tmp_path,
        [speech(0.6), speech(0.8)],
        [["Count for me."], ["Stop there."]],
        {"Count for me.": long_reply, "Stop there.": Reply("Stopped.")},
        barge_in_at_s=0.5,
    )
    first, second = call.turns
    assert first["interrupted"] is True and first["agent_text"].startswith("One two")
    # the caller began 0.5 s into the reply; the agent went quiet within 300 ms of that
    assert 0 < first["agent_stopped_ms"] <= 300, first["agent_stopped_ms"]
    assert first["invalid"] == []
    assert_whole(second, settings)  # the next turn is whole, with its own reply
    assert second["agent_text"] == "Stopped." and second["speech_id"] != first["speech_id"]
    assert second["agent_stopped_ms"] is None


async def test_a_false_interruption_pauses_and_resumes_the_reply(settings, tmp_path):
    """A cough (sound the ASR hears no words in) pauses the agent; with no transcript LiveKit
    resumes the reply, which is then neither interrupted nor cut short."""
    long_reply = Reply("One two three four five six seven eight nine ten eleven twelve.")
    call, _, tts = await scripted_call(
        settings,
        tmp_path,
        [speech(0.6), speech(0.3, name="cough")],
        [["Count for me."], [""]],
        {"Count for me.": long_reply},
        barge_in_at_s=0.4,
    )
    first, cough = call.turns
    assert first["interrupted"] is False and first["false_interruptions"] == 1
    assert first["invalid"] == []
    marks = first["marks_ms"]
    reply_s = len(long_reply.text) * tts.s_per_char
    # it played to the end: the stop is the reply's length (plus the pause) after its start
    assert marks["agent_stopped"] - marks["first_frame_out"] > reply_s * 1000
    assert cough["user_text"] == "" and cough["v2v_ms"] is None and cough["speech_id"] is None


async def test_an_llm_failure_is_answered_with_the_fallback(settings, tmp_path):
    call, _, _ = await scripted_call(settings, tmp_path, [speech(0.6)], [["Hello?"]], {"Hello?": Reply(fail=True)})
    [turn] = call.turns
    assert turn["fallback"] is True and turn["agent_text"] == settings.llm.fallback_text
    assert turn["invalid"] == [] and turn["v2v_ms"] is not None
    assert {"llm_request", "tts_first_audio", "first_frame_out"} <= set(turn["marks_ms"])


async def test_an_empty_transcript_is_a_turn_without_a_reply(settings, tmp_path):
    call, model, _ = await scripted_call(
        settings, tmp_path, [speech(0.5), speech(0.6)], [[""], ["Hello?"]], {"Hello?": Reply("Hi.")}
    )
    empty, hello = call.turns
    assert empty["user_text"] == "" and empty["v2v_ms"] is None and empty["speech_id"] is None
    assert empty["preflights"] == 0 and empty["invalid"] == []
    assert model.requests == ["Hello?"]
    assert_whole(hello, settings)


async def test_speech_without_words_is_answered_with_a_request_to_repeat(settings, tmp_path):
    call, model, _ = await scripted_call(
        settings, tmp_path, [speech(0.5), speech(0.6)], [[UNHEARD], ["Firefox."]], {"Firefox.": Reply("Good choice.")}
    )
    unheard, firefox = call.turns
    assert unheard["unheard"] is True and not unheard["fallback"]
    assert unheard["agent_text"] == settings.asr.fallback_text and unheard["v2v_ms"] is not None
    assert unheard["invalid"] == [] and unheard["user_text"] == ""
    assert model.requests == ["Firefox."]  # the request to repeat is no LLM turn
    assert_whole(firefox, settings)
    assert firefox["unheard"] is False


async def test_no_request_to_repeat_once_the_caller_talks_again(settings, tmp_path):
    """A noise before the words, then a pause long enough to end a turn: by the time the ASR
    has given up on the noise the caller is saying their words, which are the turn; asking them
    to repeat would talk over them (and answer a turn nobody took). Seen on a 5 dB SNR file."""
    call, model, _ = await scripted_call(
        settings,
        tmp_path,
        [speech(0.3, 0.35, 0.8)],
        [[UNHEARD], ["This is a long stop."]],
        {"This is a long stop.": Reply("Got it.")},
        unheard_after_s=0.3,
    )
    assert all(t["agent_text"] != settings.asr.fallback_text and not t["unheard"] for t in call.turns), call.turns
    assert model.requests == ["This is a long stop."]
    answered = [t for t in call.turns if t["agent_text"]]
    assert [t["agent_text"] for t in answered] == ["Got it."] and answered[0]["invalid"] == []


@pytest.mark.parametrize("final_after_s", [0.0, 0.25])
async def test_an_utterance_the_asr_ends_twice_is_one_turn(settings, tmp_path, final_after_s):
    """The ASR's endpointer (0.1 s here) ends an utterance at a 0.15 s pause that the session's
    VAD (0.2 s) hears through. Its final for the rest comes before the VAD's end of the turn
    (0 s), or after it (a decode of 0.25 s): either way LiveKit gets the turn's words as one
    final and answers them once. (Answered part by part, the second final became a turn of its
    own and stopped the first reply: seen in `halfsec bench compare`.)"""
    whole = "The red fox has read many books, but there is always more to read."
    call, model, _ = await scripted_call(
        settings,
        tmp_path,
        [speech(0.6, 0.15, 0.6)],
        [["The red fox has read many books,"], ["but there is always more to read."]],
        {whole: Reply("So true.")},
        asr_endpoint_s=0.06,
        final_after_s=final_after_s,
    )
    [turn] = call.turns
    assert_whole(turn, settings)
    assert (turn["user_text"], turn["agent_text"]) == (whole, "So true.")
    # (a preemptive request on the first part's preflight is allowed: it was never spoken)
    assert model.requests[-1] == whole and "but there is always more to read." not in model.requests
    assert turn["stt_ms"] < final_after_s * 1000 + 100, turn["stt_ms"]


async def test_a_tool_call_is_one_reply(settings, tmp_path):
    tools = settings.model_copy(update={"tools": settings.tools.model_copy(update={"enabled": True})})
    call, model, _ = await scripted_call(
        tools,
        tmp_path,
        [speech(0.6)],
        [["What time is it?"]],
        {"What time is it?": Reply("It is noon.", tool="current_time")},
    )
    [turn] = call.turns
    assert_whole(turn, tools)
    assert model.requests == ["What time is it?", "What time is it?"]  # the call, then the answer
    assert turn["agent_text"] == "It is noon."
    # the wait for the first spoken token covers the tool's round trip
    assert turn["llm_ttft_ms"] >= 2 * 50


def with_turn(settings, detection, streaming=True):
    return settings.model_copy(
        update={
            "turn": settings.turn.model_copy(update={"detection": detection}),
            "asr": settings.asr.model_copy(update={"streaming": streaming}),
        }
    )


@pytest.mark.parametrize("detection", ["vad", "stt"])
async def test_one_owner_ends_the_turn(settings, tmp_path, detection):
    """The session's VAD hears 200 ms of silence; the ASR service's endpointer waits 500 ms. With
    `turn.detection: vad` the VAD ends the turn and the ASR's end of speech changes nothing; with
    `stt` the ASR's endpoint ends it, whatever the VAD said."""
    call, _, _ = await scripted_call(
        with_turn(settings, detection),
        tmp_path,
        [speech(0.6)],
        [["Hello there."]],
        {"Hello there.": Reply("Hi.")},
        asr_endpoint_s=0.5,
    )
    [turn] = call.turns
    assert turn["invalid"] == [] and turn["agent_text"] == "Hi."
    if detection == "vad":
        assert 168 <= turn["endpoint_ms"] < 450, turn["endpoint_ms"]
    else:
        assert turn["endpoint_ms"] >= 500, turn["endpoint_ms"]


async def test_without_streaming_the_vad_ends_the_turn_and_the_utterance_is_decoded_after(settings, tmp_path):
    one_shot = with_turn(settings, "vad", streaming=False)
    call, model, _ = await scripted_call(
        one_shot, tmp_path, [speech(0.6)], [["Hello there."]], {"Hello there.": Reply("Hi.")}
    )
    [turn] = call.turns
    assert turn["invalid"] == [] and turn["user_text"] == "Hello there." and model.requests == ["Hello there."]
    assert 168 <= turn["endpoint_ms"] < 450 and turn["preflights"] == 0
    assert {"stt_request", "final_transcript"} <= set(turn["marks_ms"])


async def test_preemptive_tts_reaches_livekit(settings):
    from agent.tracing import CallTracer

    for on in (False, True):
        s = settings.model_copy(update={"turn": settings.turn.model_copy(update={"preemptive_tts": on})})
        session, agent = build_session(
            s,
            CallTracer("t", lambda record: None),
            vad=ScriptedVAD(),
            asr=ScriptedAsr([["Hi."]]),
            tts_client=ScriptedTts(),
            model=ScriptedLLM({}),
        )
        assert session.options.preemptive_generation["enabled"] is True
        assert session.options.preemptive_generation["preemptive_tts"] is on
        await agent.aclose_clients()


@pytest.mark.parametrize("wait_s", [0.8, None])
async def test_a_pause_after_a_filler_does_not_end_the_turn(settings, tmp_path, wait_s):
    """The caller pauses 0.5 s after "uh" (the VAD's 0.2 s ends its speech, the ASR ends an
    utterance). With `turn.unfinished_wait_s` the words that stop there are held: one turn, one
    reply; the reply started on "Montreal, uh" meanwhile is thrown away unheard, counted on the
    turn. Without it, the pause ends a turn whose reply the caller's next words stop."""
    whole = "Montreal, uh forced aligner."
    call, model, _ = await scripted_call(
        settings.model_copy(update={"turn": settings.turn.model_copy(update={"unfinished_wait_s": wait_s})}),
        tmp_path,
        [speech(0.6, 0.5, 0.6)],
        [["Montreal, uh"], ["forced aligner."]],
        {"Montreal, uh": Reply("Yes?", ttft_s=0.3), whole: Reply("Got it."), "forced aligner.": Reply("Got it.")},
    )
    if wait_s is None:
        assert model.requests[0] == "Montreal, uh" and len(call.turns) == 2
        return
    [turn] = call.turns
    assert_whole(turn, settings)
    assert (turn["user_text"], turn["agent_text"]) == (whole, "Got it.")
    assert model.requests == ["Montreal, uh", whole]
    assert turn["preemptive"]["started"] >= 1 and turn["preemptive"]["discarded_ms"] > 0


async def test_the_reply_to_unfinished_words_is_made_while_they_wait(settings, tmp_path):
    """A caller who stops on "I want the" and says no more: the words wait 0.8 s before they end
    the turn, and their reply is made meanwhile (its LLM request at the wait's start), so the
    caller hears it soon after the wait, not a whole reply's time after it."""
    wait_s, ttft_s = 0.8, 0.4
    call, model, _ = await scripted_call(
        settings.model_copy(update={"turn": settings.turn.model_copy(update={"unfinished_wait_s": wait_s})}),
        tmp_path,
        [speech(0.6)],
        [["I want the"]],
        {"I want the": Reply("The what?", ttft_s=ttft_s)},
    )
    [turn] = call.turns
    marks = turn["marks_ms"]
    assert (turn["user_text"], turn["agent_text"]) == ("I want the", "The what?")
    assert model.requests == ["I want the"] and turn["preemptive"]["used"]
    assert marks["final_transcript"] - marks["last_voiced"] >= wait_s * 1000  # the words waited
    assert marks["llm_request"] < marks["last_voiced"] + 400  # the reply did not
    assert turn["v2v_ms"] < (wait_s + ttft_s) * 1000
