"""One punctuation table (services/tts/text/punctuation.py): the agent's chunker, the service's
pieces, the pause after a piece and the LLM's first-sentence mark agree on where sentences and
clauses end. Pure text: no model, no server."""

import pytest

from agent.plugins.chunking import FirstClauseTokenizer
from services.llm import FIRST_SENTENCE
from services.tts.text.cuts import clauses, split_pieces
from services.tts.text.punctuation import (
    CLAUSE_MARKS,
    CLAUSE_PAUSE_S,
    SENTENCE_MARKS,
    SENTENCE_PAUSE_S,
    ends_sentence,
    pause_after,
)


def agent_chunks(text: str) -> list[str]:
    return FirstClauseTokenizer().tokenize(text)


def test_every_mark_ends_either_a_sentence_or_a_clause():
    assert not set(SENTENCE_MARKS) & set(CLAUSE_MARKS)


@pytest.mark.parametrize("mark", SENTENCE_MARKS)
def test_a_sentence_mark_ends_a_sentence_for_the_agent_and_the_service(mark):
    first = f"The pharmacy opens at nine{mark}"
    text = f"{first} It closes at six tonight."
    assert agent_chunks(text) == split_pieces(text) == [first, "It closes at six tonight."]
    assert ends_sentence(first) and pause_after(first) == SENTENCE_PAUSE_S
    assert FIRST_SENTENCE.search(text).group(0).strip() == first


@pytest.mark.parametrize("mark", CLAUSE_MARKS)
def test_a_clause_mark_ends_a_clause_for_the_agent_and_the_service(mark):
    clause = f"The pharmacy opens at nine{mark}"
    sentence = f"{clause} it closes at six tonight."
    # a later sentence: the agent sends it whole, and the service keeps it whole
    text = f"Thanks for waiting. {sentence}"
    assert agent_chunks(text) == split_pieces(text) == ["Thanks for waiting.", sentence]
    # cut at all (the agent's first sentence, a sentence too long for one piece): at the same place
    cut = [clause, "it closes at six tonight."]
    assert agent_chunks(sentence) == clauses(sentence, 1) == split_pieces(sentence, limit=len(sentence) - 1) == cut
    assert not ends_sentence(clause) and pause_after(clause) == CLAUSE_PAUSE_S
    assert FIRST_SENTENCE.search(text).group(0).strip() == "Thanks for waiting."
    assert FIRST_SENTENCE.search(sentence).group(0) == sentence  # its clause is no first sentence


def test_a_semicolon_ends_a_clause_everywhere():
    assert ";" in CLAUSE_MARKS and ";" not in SENTENCE_MARKS
    text = "Thanks for waiting. The table is free; I have booked it for you."
    assert (
        agent_chunks(text)
        == split_pieces(text)
        == ["Thanks for waiting.", "The table is free; I have booked it for you."]
    )
    assert agent_chunks("The table is free; I have booked it.") == ["The table is free;", "I have booked it."]
    assert pause_after("The table is free;") == CLAUSE_PAUSE_S and not ends_sentence("The table is free;")
    assert FIRST_SENTENCE.search("The table is free; I have") is None
