from agent.plugins.chunking import FirstClauseTokenizer
from services.tts.text.cuts import clauses


async def stream_chunks(text: str, step: int = 3, **options) -> list[str]:
    stream = FirstClauseTokenizer(**options).stream()
    for i in range(0, len(text), step):  # token-sized pieces, as the LLM streams them
        stream.push_text(text[i : i + step])
    stream.end_input()
    return [ev.token async for ev in stream]


async def test_the_first_sentence_goes_by_clauses_then_whole_sentences():
    chunks = await stream_chunks(
        "Sure, I can help with that, what time works best for you? I have nine, ten or eleven. Dr. Lee agrees."
    )
    assert chunks == [
        "Sure,",  # a lone "Sure," goes first: the stream does not merge it back
        "I can help with that,",
        "what time works best for you?",
        "I have nine, ten or eleven.",  # later sentences keep their clauses together
        "Dr. Lee agrees.",
    ]


async def test_a_sentence_without_a_clause_goes_whole_and_short_ones_are_merged():
    chunks = await stream_chunks("Let me check that for you. Okay. It is booked for Monday.")
    assert chunks == ["Let me check that for you.", "Okay. It is booked for Monday."]


async def test_more_words_can_be_asked_of_the_first_clause():
    chunks = await stream_chunks("Oh yes, it is booked for Monday morning, see you then.", min_clause_words=3)
    assert chunks == ["Oh yes, it is booked for Monday morning,", "see you then."]


def test_later_clauses_need_three_words_and_words_after_them():
    assert clauses("Well, then, the total is five dollars, including tax.", 1) == [
        "Well,",
        "then, the total is five dollars,",  # "then," alone is too short a clause
        "including tax.",
    ]
    assert clauses("It costs 1,250 dollars, roughly.", 1) == ["It costs 1,250 dollars,", "roughly."]
    assert clauses("Ends with a clause mark,", 1) == ["Ends with a clause mark,"]


def test_whole_text_tokenize_uses_the_same_rule():
    assert FirstClauseTokenizer().tokenize("Well, that depends on the weather, I think. Maybe, yes.") == [
        "Well,",
        "that depends on the weather,",
        "I think.",
        "Maybe, yes.",
    ]
