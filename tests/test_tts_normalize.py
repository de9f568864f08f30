"""What services/tts says for text an LLM writes, and how it cuts long text into pieces."""

import pytest

from services.tts.text.cuts import MAX_PIECE_CHARS, split_pieces
from services.tts.text.normalize import speakable


@pytest.mark.parametrize(
    "text, spoken",
    [
        # cardinals, decimals, ordinals, negatives, ranges
        ("I have 3 slots.", "I have three slots."),
        (
            "That is 1,234,567 steps.",
            "That is one million two hundred and thirty-four thousand five hundred and sixty-seven steps.",
        ),
        ("Pi is 3.14.", "Pi is three point one four."),
        ("The 3rd floor, the 21st century, the 2nd try.", "The third floor, the twenty-first century, the second try."),
        ("It is -5 outside.", "It is minus five outside."),
        ("Wait 5-10 minutes.", "Wait five to ten minutes."),
        ("Open 9-5 daily.", "Open nine to five daily."),
        # years and dates
        ("Founded in 1999.", "Founded in nineteen ninety-nine."),
        ("Since 2024, and in 2005.", "Since twenty twenty-four, and in two thousand and five."),
        ("Music of the 1980s and the '90s.", "Music of the nineteen eighties and the nineties."),
        ("On January 5, 2024.", "On January fifth, twenty twenty-four."),
        ("On Mar 3rd.", "On March third."),
        ("Due 2024-03-15.", "Due March fifteenth, twenty twenty-four."),
        # times
        ("Come at 3:30 pm.", "Come at three thirty PM."),
        ("Come at 3:30PM tomorrow.", "Come at three thirty PM tomorrow."),
        ("Come at 9am or 10 a.m. Then rest.", "Come at nine AM or ten AM. Then rest."),
        ("At 3 p.m.", "At three PM."),
        ("At 10:05 or 12:00.", "At ten oh five or twelve o'clock."),
        ("At 15:00 or 18:45.", "At fifteen hundred or eighteen forty-five."),
        # currency
        ("It costs $5.99.", "It costs five dollars and ninety-nine cents."),
        ("It costs $1.", "It costs one dollar."),
        ("Only $0.50 more.", "Only fifty cents more."),
        ("It was $20.00, now $1,250.", "It was twenty dollars, now one thousand two hundred and fifty dollars."),
        ("A $1.5 million deal, $3k bonus.", "A one point five million dollars deal, three thousand dollars bonus."),
        ("€20 or £3.50 or £1.01.", "twenty euros or three pounds and fifty pence or one pound and one penny."),
        ("Just 99¢ or 5 USD.", "Just ninety-nine cents or five dollars."),
        # percentages and units
        ("About 45% agree, 3.5% do not.", "About forty-five percent agree, three point five percent do not."),
        ("It is 5 km away, 1 km more.", "It is five kilometers away, one kilometer more."),
        ("Walk 200 m, or 1 m.", "Walk two hundred meters, or one meter."),
        ("Drive at 60 mph or 100 km/h.", "Drive at sixty miles per hour or one hundred kilometers per hour."),
        (
            "It is 20°C, 68°F, 1°C warmer.",
            "It is twenty degrees Celsius, sixty-eight degrees Fahrenheit, one degree Celsius warmer.",
        ),
        ("Weighs 2.5 kg, 500 g, 1 lb.", "Weighs two point five kilograms, five hundred grams, one pound."),
        (
            "Has 16 GB, 512GB and 3 GHz.",
            "Has sixteen gigabytes, five hundred and twelve gigabytes and three gigahertz.",
        ),
        ("Takes 10 ms, 5 min, 2 hrs.", "Takes ten milliseconds, five minutes, two hours."),
        ("Give me 5 minutes.", "Give me five minutes."),  # a word, not the unit "min"
        # abbreviations
        (
            "Dr. Lee and Mr. Smith met Mrs. Jones and Ms. Park.",
            "Doctor Lee and Mister Smith met Missus Jones and Miz Park.",
        ),
        ("St. Mark's is on Main St. near Elm Dr.", "Saint Mark's is on Main Street near Elm Drive."),
        ("Fruit, e.g. apples, i.e. food.", "Fruit, for example apples, that is food."),
        ("Cats vs. dogs, pens, etc. Then more.", "Cats versus dogs, pens, et cetera. Then more."),
        ("Apples, pears, etc.", "Apples, pears, et cetera."),
        ("Room No. 5 is our #1 pick.", "Room number five is our number one pick."),
        ("Open 24/7, AT&T too.", "Open twenty-four seven, AT and T too."),
        # phone numbers, URLs, e-mail
        ("Call 555-123-4567.", "Call five five five, one two three, four five six seven."),
        ("Call (555) 123-4567 now.", "Call five five five, one two three, four five six seven now."),
        ("See https://www.example.com/help?id=3.", "See example dot com."),
        ("See www.example.org, or example.io.", "See example dot org, or example dot io."),
        ("Mail help.desk@example.co.uk today.", "Mail help dot desk at example dot co dot uk today."),
        # markdown
        ("**Sure!** I can *help* with `that`.", "Sure! I can help with that."),
        ("Read [the guide](https://x.com/guide) first.", "Read the guide first."),
        ("~~No~~ __yes__, and snake_case stays.", "No yes, and snake case stays."),
        ("# Summary\n\n- first item\n- second item", "Summary. first item. second item"),
        ("Steps:\n\n1. Open it.\n2. Close it.", "Steps: Open it. Close it."),
        ("1999. That was a year.", "nineteen ninety-nine. That was a year."),
        ("Here:\n\n```python\nprint('x')\n```\n\nDone.", "Here: Done."),
        ("| day | time |\n|---|---|\n| Mon | 9am |", "day, time. Mon, nine AM"),
        ("![a cat](cat.png) sleeps", "a cat sleeps"),
        # emoji and leftovers
        ("Great job! 🎉👍🏽", "Great job!"),
        ("Sure, I can help with that,", "Sure, I can help with that,"),  # a first clause stays a clause
        ("Hello there", "Hello there"),
        # control characters are gaps, format characters nothing (before markdown: NUL is no U+FFFD)
        ("Hello\x00world\x07.", "Hello world."),
        ("Call\x1b me\x7f back\x85 soon.", "Call me back soon."),
        ("co\u00adop\u200b \ufeffnow", "coop now"),
        ("# Title\x00\n\n- one\x01\n- two", "Title. one. two"),
    ],
)
def test_speakable(text, spoken):
    assert speakable(text) == spoken


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\n\t", "🎉", "👍🏽🔥", "---", "**", "```\ncode only\n```", "<br>", "\x00\x01\x1b\x7f", "\u200b\ufeff"],
)
def test_nothing_speakable_is_empty(text):
    assert speakable(text) == ""


@pytest.mark.parametrize(
    "text, pieces",
    [
        ("One. Two! Three? Four; five.", ["One.", "Two!", "Three?", "Four; five."]),  # ";" ends a clause
        ("  Only one sentence here  ", ["Only one sentence here"]),
        ("Fine. ... !", ["Fine."]),  # punctuation alone is not a piece
        ("", []),
        ("Pi is 3.14 today.", ["Pi is 3.14 today."]),  # a decimal point is no sentence end
    ],
)
def test_pieces_end_at_sentences(text, pieces):
    assert split_pieces(text) == pieces


def test_a_long_sentence_is_cut_at_clauses_then_words_within_the_limit():
    clause = "and then the caller asked about the weather in the north"  # 56 chars
    sentence = ", ".join([clause] * 6) + "."
    words = " ".join(["word"] * 120) + "."
    pieces = split_pieces(f"Short one. {sentence} {words} {'x' * 600}")
    assert pieces[0] == "Short one."
    assert all(len(p) <= MAX_PIECE_CHARS for p in pieces), [len(p) for p in pieces]
    assert pieces[1] == ", ".join([clause] * 3) + ","  # as many whole clauses as fit
    assert "".join(pieces).replace(" ", "") == f"Short one.{sentence}{words}{'x' * 600}".replace(" ", "")


def test_pieces_stay_under_kokoros_phoneme_limit():
    """The character bound is a stand-in for Kokoro's 510 phoneme tokens: check it with the real
    phonemiser on text that is dense in phonemes (letters spoken one by one, long words)."""
    pytest.importorskip("kokoro_onnx")
    from kokoro_onnx.tokenizer import Tokenizer

    tokenizer = Tokenizer()
    dense = (
        " ".join(["x y z e g h k, F B I, I O U"] * 40)
        + ". "
        + " ".join(["The FBI, CIA and NASA met about an API, an SQL URL and the CEO"] * 10)
        + ". "
        + " ".join(["pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism"] * 10)
    )
    for piece in split_pieces(speakable(dense)):
        phonemes = " ".join(tokenizer.phonemize(piece, "en-us").split())
        assert len(tokenizer.tokenize(phonemes, limit=None)) <= 510, piece
