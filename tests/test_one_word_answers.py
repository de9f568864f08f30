"""The dev set's one-word answers ("bat", "six", "Firefox", "thanks", ...; other speakers than the
pipeline was tuned on), each the turn of a call with every real model and service: no turn with
a voice in it goes unanswered. The agent answers its words, or, when Whisper makes no words of
it even decoded whole, asks the caller to repeat.

Each clip opens its own call: this is about the rest of the pipeline hearing and answering one
word once the VAD has. Whether the VADs still hear a soft one after a call has run a while
(Silero is stateful, docs/asr.md) is the last test's."""

import pytest

from agent.sim.call import run_call
from agent.sim.caller import load_utterance
from agent.sim.devset import artifacts as devset_artifacts
from agent.sim.devset import dev_set

from .conftest import required


@pytest.fixture(scope="module")
async def answers(services, settings, tmp_path_factory):
    required(settings, extra=devset_artifacts(settings))
    clips = [load_utterance(wav) for wav, category, _ in dev_set(settings) if category == "one-word"]
    # Voiced by the peers' rule (Silero >= 0.5 in some 32 ms window): the caller's VAD hears it.
    # One clip ("alright", -35 dBFS, Silero's best window 0.24) is below it: a mumble no VAD at
    # its default threshold takes for speech, so it is no turn; `halfsec bench asr` counts it.
    voiced = [clip for clip in clips if clip.voice is not None]
    assert len(voiced) >= len(clips) - 1, [c.path.name for c in clips if c.voice is None]
    out = tmp_path_factory.mktemp("one-word")
    calls = [await run_call(settings, [clip], out / clip.path.stem, reply_timeout_s=30.0) for clip in voiced]
    return voiced, calls


async def test_every_one_word_answer_is_answered(answers, settings):
    voiced, calls = answers
    turns = [turn for call in calls for turn in call.voiced_turns()]
    assert len(turns) == len(voiced), [t["user_text"] for t in turns]
    for clip, turn in zip(voiced, turns, strict=True):
        assert turn["v2v_ms"] is not None, (clip.path.name, turn)
        assert turn["invalid"] == [], (clip.path.name, turn["invalid"])
        if turn["unheard"]:  # no words even decoded whole: the agent asked
            assert turn["agent_text"] == settings.asr.fallback_text, turn
        else:
            assert turn["user_text"].strip(), (clip.path.name, turn)
    # most are heard as words, not answered with a request to repeat
    assert sum(not t["unheard"] for t in turns) >= len(turns) - 2, [t["user_text"] for t in turns]


async def test_a_soft_okay_after_another_turn_in_the_same_call_is_answered(services, settings, tmp_path):
    """The dev set's soft "okay" after a turn of another speaker and the agent's reply, in one
    call: with both VADs keeping the call's Silero state it started no turn at two calls at once
    (a bench call, 2026-12-06); with their state cleared once the quiet had lasted 1 s, where
    the call's 32 ms windows fell on it still decided (CI missed it once); cleared at the sound
    after the quiet, both hear it wherever they fall (test_silero_forgets)."""
    required(settings, extra=devset_artifacts(settings))
    clips = {wav.name: wav for wav, _, _ in dev_set(settings)}
    call = await run_call(
        settings, [clips["accents--uk-fears.wav"], clips["one-word--okay.wav"]], tmp_path, reply_timeout_s=30.0
    )
    turns = call.voiced_turns()
    assert len(turns) == 2 and all(t["v2v_ms"] is not None and not t["invalid"] for t in turns), call.turns
    assert "okay" in turns[1]["user_text"].lower() or turns[1]["unheard"], turns[1]
