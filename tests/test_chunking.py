from agent.plugins.chunking import FirstClauseTokenizer


async def stream_chunks(text: str, step: int = 3) -> list[str]:
    stream = FirstClauseTokenizer().stream()
    for i in range(0, len(text), step):  # token-sized pieces, as the LLM streams them
        stream.push_text(text[i : i + step])
    stream.end_input()
    return [ev.token async for ev in stream]


async def test_first_chunk_is_a_clause_then_sentences():
    chunks = await stream_chunks(
        "Sure, I can help with that, what time works best for you? I have nine or ten. Dr. Lee agrees."
    )
    assert chunks == [
        "Sure, I can help with that,",
        "what time works best for you?",
        "I have nine or ten.",
        "Dr. Lee agrees.",
    ]


async def test_too_short_a_clause_waits_for_the_sentence():
    chunks = await stream_chunks("Oh yes, it is booked for Monday morning. See you then.")
    assert chunks[0] == "Oh yes, it is booked for Monday morning."  # "Oh yes," alone sounds clipped


def test_whole_text_tokenize_uses_the_same_rule():
    assert FirstClauseTokenizer().tokenize("Well, that depends on the weather, I think. Maybe.") == [
        "Well, that depends on the weather,",
        "I think.",
        "Maybe.",
    ]
