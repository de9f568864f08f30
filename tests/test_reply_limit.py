"""The reply the caller hears: at most `llm.max_sentences` sentences, none said twice; the first
sentence streams as it comes, later ones pass whole."""

from __future__ import annotations

import pytest

from agent.reply import ReplyLimit


def run(limit: ReplyLimit, deltas: list[str]) -> tuple[list[str], str]:
    """What `limit` passes on after each delta (until it is done), and the whole reply heard."""
    passed = []
    for delta in deltas:
        passed.append(limit.feed(delta))
        if limit.done:
            break
    passed.append(limit.flush())
    return passed, "".join(passed)


def tokens(text: str) -> list[str]:
    """Roughly as an LLM streams: each word with the space before it."""
    words = text.split(" ")
    return [words[0], *(" " + w for w in words[1:])]


def test_the_first_sentence_streams_word_by_word():
    passed, heard = run(ReplyLimit(2), tokens("Sure, your table for four is booked for eight tonight."))
    assert heard == "Sure, your table for four is booked for eight tonight."
    assert passed[:3] == ["Sure,", " your", " table"]  # nothing held back


def test_a_reply_stops_after_its_sentences():
    reply = "Your parcel left the depot today. It should arrive tomorrow. Anything else? I can also help."
    limit = ReplyLimit(2)
    passed, heard = run(limit, tokens(reply))
    assert heard == "Your parcel left the depot today.\nIt should arrive tomorrow."
    assert limit.done and len(passed) < len(tokens(reply))  # it stopped reading the stream
    assert "It should arrive tomorrow." in passed  # a later sentence passes whole (the space went before it)


def test_a_repeated_sentence_is_dropped_and_ends_the_reply():
    reply = "I can help you reset it now. I can help you reset it now! Open settings first."
    limit = ReplyLimit(3)
    _, heard = run(limit, tokens(reply))
    assert heard == "I can help you reset it now.\n"  # its end went on before the repeat came
    assert limit.repeats == 1


def test_the_last_sentence_needs_no_space_after_it():
    _, heard = run(ReplyLimit(2), tokens("It costs 3.14 dollars. That includes delivery"))
    assert heard == "It costs 3.14 dollars.\nThat includes delivery"
    _, heard = run(ReplyLimit(1), tokens("It costs 3.14 dollars. That includes delivery"))
    assert heard == "It costs 3.14 dollars."


def test_a_short_opener_is_no_sentence_of_its_own():
    # FIRST_SENTENCE's rule: "Sure." is too short to end a sentence, so it runs on
    _, heard = run(ReplyLimit(1), tokens("Sure. I can move it to Thursday. Anything else?"))
    assert heard == "Sure. I can move it to Thursday."


@pytest.mark.parametrize(
    "deltas", [["Hello there. How are you today? Fine."], list("Hello there. How are you today? Fine.")]
)
def test_any_chunking_gives_the_same_reply(deltas):
    _, heard = run(ReplyLimit(2), deltas)
    assert heard == "Hello there.\nHow are you today?"


def test_no_limit_passes_everything_but_repeats():
    reply = "One thing first. Then another. One thing first."
    _, heard = run(ReplyLimit(None), tokens(reply))
    assert heard == "One thing first.\nThen another."


def test_the_first_sentences_end_passes_as_a_line_break_while_the_second_is_held():
    limit = ReplyLimit(2)
    passed = [limit.feed(d) for d in tokens("I'm sorry for the misunderstanding. I can")]
    # the break tells the TTS's chunker the first sentence is over (agent/plugins/chunking.py)
    assert "".join(passed) == "I'm sorry for the misunderstanding.\n"
    assert passed[-2:] == ["\n", ""]  # " I" came: the break passed, "I can" is held with its sentence
    _, heard = run(ReplyLimit(2), tokens("I'm sorry for the misunderstanding. I can help with that."))
    assert heard == "I'm sorry for the misunderstanding.\nI can help with that."


def test_sentences_that_come_in_one_delta_with_the_first_all_pass():
    _, heard = run(ReplyLimit(None), ["Hello there. How are you today? I am fine. ", "Bye now."])
    assert heard == "Hello there.\nHow are you today? I am fine. Bye now."


def test_a_first_sentence_that_loops_stops_at_the_third_time():
    """SmolLM2-135M, a plain prompt: 'as opposed to being old' until max_tokens, no sentence end."""
    limit = ReplyLimit(2)
    passed, heard = run(limit, tokens("To be old as opposed" + " to being old as opposed" * 30))
    assert heard == "To be old as opposed to being old as opposed to being old as opposed to being"
    assert limit.done and limit.repeats == 1


@pytest.mark.parametrize("said", ["No, no, no, no, not at all.", "Ha ha ha ha ha ha, that is a good one."])
def test_a_short_word_said_again_on_purpose_is_no_loop(said):
    assert run(ReplyLimit(2), tokens(said))[1] == said


def test_a_later_sentence_that_loops_is_not_said_and_ends_the_reply():
    limit = ReplyLimit(3)
    reply = "Sure, I can help. " + "It is the one that is the one that" + " is the one that" * 20
    passed, heard = run(limit, tokens(reply))
    assert heard == "Sure, I can help.\n" and limit.done and limit.repeats == 1
    assert len(passed) < 20  # the stream was left well before its end
