"""`halfsec bench compare`: scripted replies at the reply's own token count, how turns are picked
and counted, and one turn of each side through the real stack."""

import json

import numpy as np
import soundfile as sf
from livekit.agents import llm

from agent.session import build_llm
from agent.sim.compare import REPLY_TIMEOUT_S, run_compare, side_figures, varied_turns
from agent.sim.scripted import ScriptedLLM, read_replies

REPLY = "Strong performances against the best teams usually mean a team is peaking at the right time."


def row(file, v2v, requests=1, scripted="Sure."):
    return {"file": file, "v2v_ms": v2v, "llm_requests": requests, "scripted": scripted}


def test_a_turn_the_agent_talked_over_is_left_out_of_v2v_and_named():
    talked = {**row("six.wav", None), "talked_over": True}
    f = side_figures([row("a.wav", 1000), talked, row("c.wav", 3000)], [record("Sure.")], allowed=None)
    assert f["talked_over"] == ["six.wav"] and f["unanswered"] == []
    assert f["v2v_p50_ms"] == 2000  # neither 0 ms nor the 30 s timeout


def record(said, invalid=(), ttft=None, **flags):
    metrics = {"assistant": {"llm_node_ttft": ttft}} if ttft is not None else {}
    return {"agent_text": said, "invalid": list(invalid), "livekit": {"metrics": metrics}, **flags}


def test_a_turn_without_a_reply_counts_at_the_timeout_and_off_script_speech_is_named():
    rows = [row("a.wav", 1000), row("b.wav", None), row("c.wav", 2000, requests=3)]
    records = [
        record("Sure.", ttft=0.1),
        record("Sure!", ttft=0.3),
        record("Sorry, I didn't catch that.", unheard=True),
        record("", invalid=["v2v_ms -20 < 0"], ttft=9.0),  # its stages are not counted
        record("Sure, the desk", interrupted=True),  # the caller spoke on: what was said before that
    ]
    f = side_figures(rows, records, allowed={"Sure.", "Sure, the desk opens at nine.", "Sorry, I didn't catch that."})
    assert f["unanswered"] == ["b.wav"] and f["off_script"] == ["Sure!"]
    assert f["v2v_p50_ms"] == 2000 and f["v2v_p95_ms"] > 2000  # the timeout is in the tail
    assert f["stages_p50_ms"]["llm_ttft"] == 200 and f["llm_requests_per_turn"] == round(5 / 3, 2)
    assert (f["records"], f["invalid_records"], f["fallbacks"]) == (5, 1, 1)
    unscripted = side_figures([row("a.wav", 900, scripted=None)], [record("Anything.")], allowed=None)
    assert unscripted["off_script"] == []  # the models' own replies have no script to miss


def test_turns_are_taken_from_each_category_in_turn_within_the_length_limits(tmp_path):
    def wav(name, seconds):
        path = tmp_path / name
        sf.write(path, np.zeros(int(seconds * 16000), dtype=np.int16), 16000)
        return path

    files = [
        (wav("a1.wav", 2), "a"),
        (wav("a2.wav", 3), "a"),
        (wav("a3.wav", 0.5), "a"),  # too short
        (wav("b1.wav", 12), "b"),  # too long
        (wav("b2.wav", 9), "b"),
        (wav("c1.wav", 1.5), "c"),
    ]
    assert [p.name for p in varied_turns(files, 10)] == ["a1.wav", "b2.wav", "c1.wav", "a2.wav"]
    assert [p.name for p in varied_turns(files, 2)] == ["a1.wav", "b2.wav"]
    # a file refused (no voice in it) gives its place to the next of its category
    asked: list[str] = []

    def usable(path):
        asked.append(path.name)
        return path.name != "a1.wav"

    assert [p.name for p in varied_turns(files, 3, usable=usable)] == ["a2.wav", "b2.wav", "c1.wav"]
    assert asked == ["a1.wav", "a2.wav", "b2.wav", "c1.wav"]  # only files it would take


def test_a_replies_file_needs_replies(tmp_path):
    path = tmp_path / "replies.txt"
    path.write_text("# shapes\n\nSure.\n  Right, then.  \n")
    assert read_replies(str(path)) == ["Sure.", "Right, then."]
    path.write_text("# nothing\n")
    try:
        read_replies(str(path))
    except ValueError as exc:
        assert "no replies" in str(exc)
    else:
        raise AssertionError("an empty replies file was accepted")


async def test_a_scripted_reply_costs_its_own_tokens_at_the_real_vllm(services, settings):
    """vLLM decodes exactly as many tokens as the reply has (not the 4x a grammar-forced reply
    takes), and the stream says the reply, whatever the model would have said."""
    model = ScriptedLLM(build_llm(settings), [REPLY, "Sure."])
    await model.prepare(settings.llm.client_base_url, settings.token())
    assert "".join(model._pieces[REPLY]) == REPLY and 15 <= len(model._pieces[REPLY]) <= 25
    ctx = llm.ChatContext.empty()
    ctx.add_message(role="user", content="Tell me about the weather on Mars in great detail.")
    said, usage = "", None
    async with model.chat(chat_ctx=ctx) as stream:
        async for chunk in stream:
            said += (chunk.delta and chunk.delta.content) or ""
            usage = chunk.usage or usage
    assert said == REPLY
    assert usage is not None and usage.completion_tokens == len(model._pieces[REPLY])
    model.turn = 2
    async with model.chat(chat_ctx=ctx) as stream:
        assert "".join([(c.delta and c.delta.content) or "" async for c in stream]) == "Sure."
    assert model.requests == {1: 1, 2: 1}
    await model.aclose()


async def test_both_sides_answer_a_turn_with_the_scripted_reply(services, settings, speech, tmp_path):
    shortest = min((wav for wav, _ in speech), key=lambda p: sf.info(p).duration)
    figures = await run_compare(settings, [shortest], ["Got it, thanks."], 1, tmp_path)
    for side in ("stock", "halfsec"):
        f = figures[side]
        assert f["turns"] == 1 and f["unanswered"] == [] and f["off_script"] == [], (side, figures["turns"])
        assert 0 < f["v2v_p50_ms"] < REPLY_TIMEOUT_S * 1000 and f["llm_requests_per_turn"] >= 1
        assert f["stages_p50_ms"]["llm_ttft"] is not None and f["invalid_records"] == 0
        assert (tmp_path / side / "call-00" / "call.wav").is_file()
    assert figures["stock_defaults"]["endpointing"]["min_delay"] == 0.3  # LiveKit 1.8.9's own
    assert figures["ratio"]["v2v_p50_ms"] == round(figures["halfsec"]["v2v_p50_ms"] / figures["stock"]["v2v_p50_ms"], 3)
    json.dumps(figures)  # the --json line
