"""agent/plugins/turn_words.py: which of the ASR service's finals LiveKit gets, and when."""

import asyncio

from agent.plugins.turn_words import TurnWords, looks_unfinished


def joiner(wait_s: float = 0.2) -> tuple[TurnWords, list[str], list[str]]:
    finals: list[str] = []
    interims: list[str] = []
    return TurnWords(final=finals.append, interim=interims.append, wait_s=wait_s), finals, interims


async def test_a_final_while_the_caller_is_silent_goes_out_at_once():
    turn, finals, _ = joiner()
    turn.utterance_started()
    turn.final("Hello there.")
    assert finals == ["Hello there."]
    turn.final("")  # an empty one too: LiveKit ignores it, the plugin's caller decides on `unheard`
    assert finals == ["Hello there.", ""]


async def test_finals_while_the_caller_speaks_go_out_as_one_when_they_stop():
    turn, finals, interims = joiner()
    turn.caller_started()
    turn.utterance_started()
    turn.final("The red fox has read many books,")
    assert finals == [] and interims == ["The red fox has read many books,"]
    assert turn.prefixed("but there") == "The red fox has read many books, but there"
    turn.utterance_started()
    turn.final("but there is always more.")
    assert finals == [] and turn.holding
    turn.caller_stopped()
    assert finals == ["The red fox has read many books, but there is always more."]
    assert not turn.holding and turn.prefixed("Next") == "Next"


async def test_the_rest_of_an_open_utterance_is_waited_for():
    # the next utterance starts before the last one's final (it is still being decoded)
    turn, finals, _ = joiner(wait_s=5.0)
    turn.caller_started()
    turn.utterance_started()
    turn.utterance_started()
    turn.final("First part,")
    turn.caller_stopped()
    assert finals == []  # the second utterance's final is the rest of the turn
    turn.final("second part.")
    assert finals == ["First part, second part."]


async def test_held_words_go_alone_if_the_rest_never_comes():
    turn, finals, _ = joiner(wait_s=0.1)
    turn.caller_started()
    turn.utterance_started()
    turn.final("First part,")
    turn.utterance_started()  # a sound the service calls speech; its final is late
    turn.caller_stopped()
    await asyncio.sleep(0.05)
    assert finals == []
    await asyncio.sleep(0.1)
    assert finals == ["First part,"]
    turn.final("")  # the late one, empty: no second turn with words
    assert finals == ["First part,", ""]


async def test_the_caller_talking_again_keeps_the_words_for_their_turn():
    turn, finals, _ = joiner(wait_s=0.1)
    turn.caller_started()
    turn.utterance_started()
    turn.final("Well,")
    turn.utterance_started()
    turn.caller_stopped()
    turn.caller_started()  # before the wait ran out
    await asyncio.sleep(0.15)
    assert finals == []
    turn.final("I think so.")
    turn.caller_stopped()
    assert finals == ["Well, I think so."]


async def test_an_outage_drops_what_was_held():
    turn, finals, _ = joiner()
    turn.caller_started()
    turn.utterance_started()
    turn.final("Half a")
    turn.reset()
    turn.caller_stopped()
    assert finals == [] and not turn.holding


def test_words_that_stop_where_a_caller_goes_on():
    unfinished = ["Uh.", "Um...", "You know...", "Montreal, uh", "I want the", "yes and", "Well,", "So -"]
    finished = ["Thanks.", "What is it for?", "I hardly know her.", "I think so", "Montreal forced.", "", "And?"]
    assert [t for t in unfinished if not looks_unfinished(t)] == []
    assert [t for t in finished if looks_unfinished(t)] == []


async def test_unfinished_words_wait_for_the_rest_of_the_turn():
    finals: list[str] = []
    turn = TurnWords(final=finals.append, interim=lambda _: None, unfinished_wait_s=0.2)
    assert turn.waits_on("Montreal, uh") and not turn.waits_on("Montreal.")
    turn.caller_started()
    turn.utterance_started()
    turn.final("Montreal, uh")
    turn.caller_stopped()
    await asyncio.sleep(0.1)
    assert finals == [] and turn.holding  # the caller may go on
    turn.caller_started()
    await asyncio.sleep(0.2)
    assert finals == []
    turn.utterance_started()
    turn.final("forced aligner.")
    turn.caller_stopped()
    assert finals == ["Montreal, uh forced aligner."]


async def test_unfinished_words_are_the_turn_once_the_wait_is_over():
    finals: list[str] = []
    turn = TurnWords(final=finals.append, interim=lambda _: None, unfinished_wait_s=0.15)
    turn.caller_started()
    turn.caller_stopped()
    turn.utterance_started()
    turn.final("Um...")  # decoded after the caller stopped: waits what is left of 0.15 s
    await asyncio.sleep(0.1)
    assert finals == []
    await asyncio.sleep(0.1)
    assert finals == ["Um..."] and not turn.holding
    # without the wait, the same words go out at once
    plain: list[str] = []
    other = TurnWords(final=plain.append, interim=lambda _: None)
    other.caller_started()
    other.caller_stopped()
    other.final("Um...")
    assert plain == ["Um..."] and not other.waits_on("Um...")
