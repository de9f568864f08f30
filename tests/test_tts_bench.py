"""The TTS bench's own arithmetic: what counts as the first sentence, a stall, and a round-trip error."""

from services.tts.bench import first_sentence_chunks, playback, spoken_wer

RATE = 100  # samples a second: one sample is 10 ms


def test_the_first_sentence_ends_with_the_chunk_that_ends_it():
    assert first_sentence_chunks(["Sure,", "I can help with that.", "What day?"]) == 2
    assert first_sentence_chunks(['He said "yes."', "Then left."]) == 1
    assert first_sentence_chunks(["and then", "nothing"]) == 2


def test_audio_that_arrives_before_it_is_needed_never_stalls():
    # 1 s of audio at t=10, the next second at t=10.9: there before the first has played out
    assert playback([(10.0, 100), (10.9, 100)], RATE) == (0.0, 12.0)


def test_a_late_chunk_stalls_for_as_long_as_it_is_late():
    # 0.5 s of audio at t=0, then 0.2 s at t=0.8 and 0.1 s at t=2.0: silent 0.5-0.8 and 1.0-2.0
    stall, end = playback([(0.0, 50), (0.8, 20), (2.0, 10)], RATE)
    assert abs(stall - 1.3) < 1e-9 and abs(end - 2.1) < 1e-9


def test_written_forms_of_the_same_words_are_no_error_but_other_words_are():
    assert spoken_wer(["It opens at 9am, costs $5."], ["It opens at 9 a.m., costs five dollars."]) == 0.0
    assert spoken_wer(["That item is out of stock."], ["That item is our stock."]) > 0.2
