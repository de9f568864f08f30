from agent.plugins.chunking import FirstClauseTokenizer


async def stream_chunks(text: str, step: int = 3, **options) -> list[str]:
    stream = FirstClauseTokenizer(**options).stream()
    for i in range(0, len(text), step):  # token-sized pieces, as the LLM streams them
        stream.push_text(text[i : i + step])
    stream.end_input()
    return [ev.token async for ev in stream]


async def test_first_chunk_is_the_first_clause_then_sentences():
    chunks = await stream_chunks(
        "Sure, I can help with that, what time works best for you? I have nine or ten. Dr. Lee agrees."
    )
    assert chunks == [
        "Sure,",  # a lone "Sure," goes first: the stream does not merge it back
        "I can help with that, what time works best for you?",  # later clauses stay in their sentence
        "I have nine or ten.",
        "Dr. Lee agrees.",
    ]


async def test_a_sentence_without_a_clause_goes_whole_and_short_ones_are_merged():
    chunks = await stream_chunks("Let me check that for you. Okay. It is booked for Monday.")
    assert chunks == ["Let me check that for you.", "Okay. It is booked for Monday."]


async def test_more_words_can_be_asked_of_the_first_clause():
    chunks = await stream_chunks("Oh yes, it is booked for Monday morning, see you then.", min_clause_words=3)
    assert chunks[0] == "Oh yes, it is booked for Monday morning,"


def test_whole_text_tokenize_uses_the_same_rule():
    assert FirstClauseTokenizer().tokenize("Well, that depends on the weather, I think. Maybe.") == [
        "Well,",
        "that depends on the weather, I think.",
        "Maybe.",
    ]
