import asyncio

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


async def test_a_short_first_sentence_goes_alone_and_later_short_ones_are_merged():
    chunks = await stream_chunks("Okay. Anything else? Sure. I will wait here.")
    assert chunks == ["Okay.", "Anything else?", "Sure. I will wait here."]
    # as soon as the next sentence has begun: it is whole then, and the next one is not waited for
    assert await pending_after("Okay. Any") == ["Okay."]
    assert await pending_after("Sure! I can") == ["Sure!"]
    assert await pending_after("Okay.") == []  # "Okay..." may still come
    # blingfire's own sentences: an abbreviation is no end
    assert await pending_after("Dr. Lee will call") == []
    assert FirstClauseTokenizer().tokenize("Okay. Anything else?") == ["Okay.", "Anything else?"]


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


async def test_a_long_first_sentence_without_a_clause_is_cut_before_a_phrase():
    reply = (
        "Strong performances against the best teams usually mean a team is peaking at the right time. "
        "Later sentences with no comma at all still go whole to the speech service."
    )
    assert await stream_chunks(reply, phrase_from_words=8) == [
        "Strong performances against the best teams",  # before the -ly adverb: the start in reach
        "usually mean a team is peaking at the right time.",
        "Later sentences with no comma at all still go whole to the speech service.",
    ]
    assert len(await stream_chunks(reply)) == 2  # off unless asked (tts.first_phrase_words)


async def test_the_phrase_cut_follows_the_clause_cut():
    reply = "Sure, the quickest way to reset your password is to open the settings page and choose security."
    chunks = await stream_chunks(reply, phrase_from_words=8)
    assert chunks == [
        "Sure,",  # one word plays while the rest is written: the next clause is cut at a phrase too
        "the quickest way to reset your password",
        "is to open the settings page and choose security.",  # 8 words before it: whole
    ]
    assert FirstClauseTokenizer(phrase_from_words=8).tokenize(reply) == chunks  # the whole text alike


def test_phrase_starts_rank_clauses_first_and_never_split_a_lead_in():
    # starts in reach at once (the first 8 words): a clause start beats a nearer preposition
    assert clauses("Please bring the receipt with you because we cannot refund it otherwise.", 1, 8) == [
        "Please bring the receipt with you",
        "because we cannot refund it otherwise.",
    ]
    assert clauses("I can book you a table for four at eight tonight in the garden.", 1, 8) == [
        "I can book you a table",
        "for four at eight tonight in the garden.",
    ]
    # "in | between": no cut after a word that leads into the next; the next start is too far
    sentence = "We looked in between the big old sofa cushions yesterday and found it."
    assert clauses(sentence, 1, 8)[0].startswith("We looked in between the big old sofa cushions yesterday")
    assert clauses("Your parcel should arrive tomorrow morning.", 1, 8) == [
        "Your parcel should arrive tomorrow morning."  # under 8 words: not cut
    ]
    # "and" inside a range or a sum is no phrase start
    assert clauses("I've changed your delivery window to between 1 and 3 pm.", 1, 8) == [
        "I've changed your delivery window to between 1 and 3 pm."
    ]
    assert clauses("Your order has 12 plates and 12 cups in it.", 1, 8) == [
        "Your order has 12 plates",
        "and 12 cups in it.",
    ]


def test_the_phrase_cut_is_the_one_the_stream_makes_as_soon_as_its_start_is_whole():
    sentence = "Every seat on the early train to the coast is already taken by a school group."
    cut = ["Every seat on the early train to the coast", "is already taken by a school group."]
    assert clauses(sentence, 1, 8) == cut  # reach: a first chunk of up to 10 words
    # the stream has it once "is" is whole (a word after it has begun), not at the sentence's end
    assert clauses("Every seat on the early train to the coast is al", 1, 8) == [cut[0], "is al"]
    assert clauses("Every seat on the early train to the coast is", 1, 8) == [
        "Every seat on the early train to the coast is"
    ]
    # a later, better start does not move a cut the stream has already made: it never sees it
    assert clauses("Three people from the support team will join the call because it ends.", 1, 8)[0] == (
        "Three people from the support team"
    )


async def test_a_first_clause_with_no_phrase_start_in_reach_is_cut_between_words_once_that_is_known():
    """A small model's loop has no comma, no sentence end and no phrase start: it was sent whole
    at the piece limit, 2-4 s of LLM decode after its first word."""
    loop = "To be old as opposed to being old as opposed to being old as opposed to being old"
    cut = ["To be old as opposed", "to being old as opposed to being old as opposed to being old"]
    assert clauses(loop, 1, 8) == cut  # near six words in, never after a lead-in ("to")
    words = loop.split()
    assert clauses(" ".join(words[:11]), 1, 8) == [" ".join(words[:11])]  # a start could still come
    assert clauses(" ".join(words[:12]), 1, 8) == [" ".join(words[:12])]  # none can; it may end here
    assert clauses(" ".join(words[:13]), 1, 8) == [cut[0], " ".join(words[5:13])]  # it goes on
    assert clauses("Well, that depends on the size of the room you want to heat.", 1, 8) == [
        "Well,",
        "that depends on the size of the room you want to heat.",
    ]
    reply = f"{loop}. Sorry about that."
    streamed = await stream_chunks(reply, phrase_from_words=8)
    assert streamed[0] == cut[0] and streamed == FirstClauseTokenizer(phrase_from_words=8).tokenize(reply)


async def pending_after(text: str) -> list[str]:
    """What the stream has handed on once `text` is in, with no more text yet (the LLM still
    decoding, or the reply limit holding the next sentence until it is whole)."""
    stream = FirstClauseTokenizer(phrase_from_words=8).stream()
    stream.push_text(text)
    await asyncio.sleep(0)
    out = []
    while True:
        try:
            out.append((await asyncio.wait_for(anext(stream), 0.01)).token)
        except TimeoutError:
            return out


async def test_a_complete_first_sentence_goes_before_the_next_one_starts():
    # agent/reply.py passes the first sentence with a line break after it, then holds the second
    # until it is whole: before, this first sentence waited for all of the second
    assert await pending_after("I'm sorry for the misunderstanding.\n") == ["I'm sorry for the misunderstanding."]
    assert await pending_after("Right, the form needs your full name.\n") == [
        "Right,",
        "the form needs your full name.",
    ]
    assert await pending_after("Thanks for calling. ") == ["Thanks for calling."]


async def test_a_first_sentence_without_the_space_after_it_still_waits():
    # "3." may still become "3.14": no end until the space or break comes
    assert await pending_after("It costs about 3.") == []
    assert await pending_after("I'm sorry for the misunderstanding.") == []


async def test_a_first_clause_goes_as_soon_as_its_comma_is_written():
    # the LLM's next token (a word with its space) is not waited for: "Yes," is a clause already
    assert await pending_after("Yes,") == ["Yes,"]
    assert await pending_after("Right, the form needs your full name,") == [
        "Right,",
        "the form needs your full name,",
    ]
    # after a digit it may be a number still being written ("1,250"); the whole text is not cut there
    assert await pending_after("It costs 1,") == []
    assert FirstClauseTokenizer().tokenize("Ends with a clause mark,") == ["Ends with a clause mark,"]
