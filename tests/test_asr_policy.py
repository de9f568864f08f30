"""The ASR stream policy on its own: scripted endpointer events and decode results chosen here,
the exact decodes it asks for and the transcripts it sends. No audio, no model, no event loop."""

from collections.abc import Callable

from configs.settings import AsrSettings
from services.asr.decodes import DecodeRequest
from services.asr.endpointer import FRAME, Candidate, Endpoint, Pause, Resume, SpeechStart
from services.asr.engine import Decoded
from services.asr.policy import Action, DecodeFailed, FinalText, Reclassify, StreamPolicy
from services.asr.protocol import SAMPLE_RATE as S
from services.asr.protocol import EndOfSpeech, Interim, Preflight, SpeechStarted
from services.asr.scheduler import Kind

NO_RETRY = {"retry_doubtful": False}  # preflights and finals: a final checks for doubt itself
INTERIM = {"timestamps": True, "retry_doubtful": False}
DOUBTFUL = "He was not. He was not. He"  # a short window's loop
SURE = "He was not an ill-disposed young man."


def policy(quietest: Callable[[int, int], int] | None = None, **opts: float) -> StreamPolicy:
    """Interims off unless asked for: each test looks at one rule."""
    settings = AsrSettings(**{"interim_interval_s": 0.0, **opts})
    return StreamPolicy(settings, quietest or (lambda start, end: end))


def decodes(actions: list[Action]) -> list[tuple[Kind, int, int, dict[str, bool]]]:
    return [(a.kind, a.start, a.end, a.options) for a in actions if isinstance(a, DecodeRequest)]


def said(text: str, phrases: list[tuple[float, str]] | None = None, redecoded: bool = False) -> Decoded:
    return Decoded(text=text, audio_s=0.0, decode_ms=1.0, phrases=phrases or [], redecoded=redecoded)


def end_of_speech(base_s: float, at: int, last_voiced: int, forced: bool = False) -> EndOfSpeech:
    base = round(base_s * S)
    return EndOfSpeech(stream_s=(base + at) / S, last_voiced_s=(base + last_voiced) / S, forced=forced)


def test_a_plain_utterance_reuses_its_preflight_as_the_final():
    p = policy()
    assert p.on_event(SpeechStart(stream_s=1.0)) == [SpeechStarted(stream_s=1.0)]
    assert p.heard(2 * S) == []
    [preflight] = p.on_event(Pause(at=2 * S))
    assert decodes([preflight]) == [(Kind.PREFLIGHT, 0, 2 * S, NO_RETRY)]
    # decoded at the first silent frame; out only once the pause may be the end of speech
    assert p.decoded(preflight, said("Hello there.")) == []
    assert p.on_event(Candidate()) == [Preflight(text="Hello there.")]
    at = 2 * S + 6 * FRAME
    assert p.on_event(Endpoint(at=at, last_voiced=2 * S)) == [
        end_of_speech(1.0, at, 2 * S),
        FinalText(1, "Hello there.", at / S, reused_preflight=True),  # nothing decoded at the endpoint
    ]
    assert not p.waiting


def test_a_preflight_still_decoding_at_the_endpoint_goes_out_then_becomes_the_final():
    p = policy()
    p.on_event(SpeechStart(stream_s=0.0))
    [preflight] = p.on_event(Pause(at=S))
    assert p.on_event(Candidate()) == []  # nothing decoded yet
    at = S + 6 * FRAME
    assert p.on_event(Endpoint(at=at, last_voiced=S)) == [end_of_speech(0.0, at, S)]
    assert p.waiting
    assert p.decoded(preflight, said("Yes.")) == [Preflight(text="Yes."), FinalText(1, "Yes.", at / S, True)]


def test_a_short_pause_inside_an_utterance_sends_no_preflight():
    """A preflight lets the agent start its reply: not at every breath inside a sentence."""
    p = policy()
    p.on_event(SpeechStart(stream_s=0.0))
    [inside] = p.on_event(Pause(at=S))
    assert p.decoded(inside, said("I would like")) == []
    assert p.on_event(Resume(pause_s=0.064)) == [Reclassify(inside, Kind.INTERIM), Interim(text="I would like")]
    [last] = p.on_event(Pause(at=2 * S))
    assert p.on_event(Candidate()) == []
    assert p.decoded(last, said("I would like a coffee.")) == [Preflight(text="I would like a coffee.")]


def test_speech_resuming_commits_the_preflight_after_a_long_pause_else_it_is_an_interim():
    p = policy(commit_min_s=2.0, commit_pause_s=0.096)
    p.on_event(SpeechStart(stream_s=0.0))
    [first] = p.on_event(Pause(at=3 * S))
    # 3 s of speech, then 0.2 s of silence: the words before it are settled
    assert p.on_event(Resume(pause_s=0.2)) == [Reclassify(first, Kind.COMMIT)]
    assert p.decoded(first, said("I went out.")) == []  # committed: neither a preflight nor an interim
    [second] = p.on_event(Pause(at=4 * S))
    assert decodes([second]) == [(Kind.PREFLIGHT, 3 * S, 4 * S, NO_RETRY)]  # only what follows the commit
    # 1 s of speech since the commit: too little to commit, so the preflight counts as an interim
    assert p.on_event(Resume(pause_s=0.2)) == [Reclassify(second, Kind.INTERIM)]
    assert p.decoded(second, said("And then")) == [Interim(text="I went out. And then")]
    [third] = p.on_event(Pause(at=6 * S))
    assert decodes([third]) == [(Kind.PREFLIGHT, 3 * S, 6 * S, NO_RETRY)]  # from the commit again
    # enough speech, but a pause too short to commit
    assert p.on_event(Resume(pause_s=0.064)) == [Reclassify(third, Kind.INTERIM)]
    [fourth] = p.on_event(Pause(at=7 * S))
    assert decodes([fourth]) == [(Kind.PREFLIGHT, 3 * S, 7 * S, NO_RETRY)]
    assert p.on_event(Candidate()) == []
    at = 7 * S + 6 * FRAME
    assert p.on_event(Endpoint(at=at, last_voiced=7 * S)) == [end_of_speech(0.0, at, 7 * S)]
    assert p.decoded(third, said("And then we")) == []  # an interim after the endpoint is not sent
    text = "I went out. And then we left."
    assert p.decoded(fourth, said("And then we left.")) == [Preflight(text=text), FinalText(1, text, at / S, True)]


def test_interims_while_talking_are_paced_by_the_piece_and_settle_finished_phrases():
    p = policy(interim_interval_s=1.0, commit_min_s=2.0)
    p.on_event(SpeechStart(stream_s=0.0))
    assert p.heard(S // 2) == []
    [first] = p.heard(S)
    assert decodes([first]) == [(Kind.INTERIM, 0, S, INTERIM)]
    assert p.heard(2 * S) == []  # one decode at a time: the first is still running
    assert p.decoded(first, said("Hello", [(0.9, "Hello")])) == [Interim(text="Hello")]
    [second] = p.heard(2 * S)
    assert decodes([second]) == [(Kind.INTERIM, 0, 2 * S, INTERIM)]
    assert p.decoded(second, said("Hello there how", [(1.2, "Hello there"), (1.9, "how")])) == [
        Interim(text="Hello there how")  # no phrase finished: nothing settles
    ]
    assert p.heard(3 * S) == []  # the last piece was 2 s long: the next one waits 2 s
    [third] = p.heard(4 * S)
    assert decodes([third]) == [(Kind.INTERIM, 0, 4 * S, INTERIM)]
    phrases = [(1.5, "Hello there."), (2.5, "How are you?"), (3.6, "I'm")]
    assert p.decoded(third, said("Hello there. How are you? I'm", phrases)) == [
        Interim(text="Hello there. How are you? I'm")
    ]
    # the two finished phrases ended a second before the piece did: settled, cut at a frame edge;
    # "I'm" is too close to the newest audio to trust
    settled = round(2.5 * S / FRAME) * FRAME
    [fourth] = p.heard(6 * S)
    assert decodes([fourth]) == [(Kind.INTERIM, settled, 6 * S, INTERIM)]
    assert p.decoded(fourth, said("I'm fine.", [(3.4, "I'm fine.")])) == [
        Interim(text="Hello there. How are you? I'm fine.")
    ]
    [preflight] = p.on_event(Pause(at=6 * S))
    assert decodes([preflight]) == [(Kind.PREFLIGHT, settled, 6 * S, NO_RETRY)]
    assert p.heard(6 * S + 4 * FRAME) == []  # no interims while a preflight may be the final
    text = "Hello there. How are you? I'm fine."
    assert p.on_event(Candidate()) == []
    assert p.decoded(preflight, said("I'm fine.")) == [Preflight(text=text)]
    at = 6 * S + 6 * FRAME
    assert p.on_event(Endpoint(at=at, last_voiced=6 * S))[1:] == [FinalText(1, text, at / S, True)]


def test_a_short_or_looping_interim_settles_nothing():
    p = policy(interim_interval_s=1.0, commit_min_s=2.0)
    p.on_event(SpeechStart(stream_s=0.0))
    [first] = p.heard(3 * S)
    p.decoded(first, said(DOUBTFUL, [(0.8, "He was not."), (1.5, "He was not."), (2.9, "He")]))
    [second] = p.heard(6 * S)
    assert decodes([second]) == [(Kind.INTERIM, 0, 6 * S, INTERIM)]


def test_a_doubtful_preflight_is_never_sent_and_is_decoded_again_over_the_full_window_as_the_final():
    p = policy()
    p.on_event(SpeechStart(stream_s=0.0))
    [inside] = p.on_event(Pause(at=S))
    assert p.decoded(inside, said(DOUBTFUL)) == []
    # the caller speaks on: an interim, as it is, and not decoded again
    assert p.on_event(Resume(pause_s=0.2)) == [Reclassify(inside, Kind.INTERIM), Interim(text=DOUBTFUL)]
    [last] = p.on_event(Pause(at=3 * S))
    assert p.on_event(Candidate()) == []
    assert p.decoded(last, said(DOUBTFUL)) == []  # a reply must not start on a loop
    at = 3 * S + 6 * FRAME
    end = p.on_event(Endpoint(at=at, last_voiced=3 * S))
    assert decodes(end) == [(Kind.FINAL, 0, 3 * S, {"window_s": 30.0})]  # the preflight's piece
    redo = end[1]
    assert isinstance(redo, DecodeRequest) and redo is last.redo
    assert p.decoded(redo, said(SURE, redecoded=True)) == [FinalText(1, SURE, at / S, True)]


def test_a_piece_the_engine_already_redecoded_is_not_decoded_again():
    p = policy(max_segment_s=10.0)
    p.on_event(SpeechStart(stream_s=0.0))
    [cut] = p.heard(10 * S)
    end = p.on_event(Endpoint(at=12 * S, last_voiced=12 * S, forced=True))
    [tail] = [a for a in end if isinstance(a, DecodeRequest)]
    assert p.decoded(cut, said(DOUBTFUL, redecoded=True)) == []  # the engine's best: kept
    [redo] = p.decoded(tail, said("He-he-he-"))  # the final's own decode: no retry of its own
    assert decodes([redo]) == [(Kind.FINAL, 10 * S, 12 * S, {"window_s": 30.0})]
    assert p.decoded(redo, said("he said.", redecoded=True)) == [
        FinalText(1, f"{DOUBTFUL} he said.", 12.0, reused_preflight=False)
    ]


def test_a_piece_nearing_whispers_window_is_cut_at_its_quietest_frame():
    searched: list[tuple[int, int]] = []

    def quietest(start: int, end: int) -> int:
        searched.append((start, end))
        return end - 40 * FRAME

    p = policy(quietest, max_segment_s=10.0)
    p.on_event(SpeechStart(stream_s=0.0))
    assert p.heard(10 * S - FRAME) == []
    [first] = p.heard(10 * S)
    assert searched == [(7 * S, 10 * S)]  # the last 3 s
    one = 10 * S - 40 * FRAME
    assert decodes([first]) == [(Kind.COMMIT, 0, one, {})]  # the engine's defaults: it retries a doubtful one
    assert p.heard(one + 10 * S - FRAME) == []  # the next piece starts at the cut
    [second] = p.heard(one + 10 * S)
    assert searched[-1] == (one + 7 * S, one + 10 * S)
    two = one + 10 * S - 40 * FRAME
    assert decodes([second]) == [(Kind.COMMIT, one, two, {})]
    at = two + 5 * S
    end = p.on_event(Endpoint(at=at, last_voiced=at, forced=True))
    assert end[0] == end_of_speech(0.0, at, at, forced=True)
    [tail] = [a for a in end if isinstance(a, DecodeRequest)]
    assert decodes([tail]) == [(Kind.FINAL, two, at, NO_RETRY)]
    # decodes come back in any order (the queue serves a final first); the text keeps spoken order
    assert p.decoded(tail, said("three.")) == []
    assert p.decoded(second, said("two")) == []
    assert p.decoded(first, said("One")) == [FinalText(1, "One two three.", at / S, reused_preflight=False)]


def test_a_piece_nearing_whispers_window_mid_pause_commits_the_preflight():
    p = policy(max_segment_s=10.0)
    p.on_event(SpeechStart(stream_s=0.0))
    [preflight] = p.on_event(Pause(at=10 * S - FRAME))
    assert p.heard(10 * S) == [Reclassify(preflight, Kind.COMMIT)]  # no new decode: the pause is the cut
    assert p.decoded(preflight, said("A long sentence.")) == []  # settled, so no preflight
    assert p.on_event(Resume(pause_s=0.1)) == []  # nothing left to commit or demote
    [rest] = p.on_event(Pause(at=12 * S))
    assert decodes([rest]) == [(Kind.PREFLIGHT, 10 * S - FRAME, 12 * S, NO_RETRY)]


def test_a_wordless_utterance_is_decoded_whole_over_wider_windows_then_called_unheard():
    p = policy()
    p.on_event(SpeechStart(stream_s=0.5))
    [preflight] = p.on_event(Pause(at=8 * FRAME))
    assert p.decoded(preflight, said("")) == []  # no words in the quick decode: no empty preflight
    p.on_event(Candidate())
    at = 14 * FRAME
    end = p.on_event(Endpoint(at=at, last_voiced=6 * FRAME))
    assert end[0] == end_of_speech(0.5, at, 6 * FRAME)
    # before giving up, the whole utterance over a wider window than the streaming one, then the full one
    assert decodes(end[1:]) == [(Kind.FINAL, 0, at, {"window_s": 20.0})]
    wider = p.decoded(end[1], said("", redecoded=True))
    assert decodes(wider) == [(Kind.FINAL, 0, at, {"window_s": 30.0})]
    heard_a_word = said("", redecoded=True)
    heard_a_word.dropped_text = "Fire"  # words, dropped by Whisper's silence gate: ask to repeat
    assert p.decoded(wider[0], heard_a_word) == [FinalText(1, "", at / S, True, unheard=True)]
    # nothing undecided at a forced endpoint: an empty final at once, nothing decoded, not unheard
    p.on_event(SpeechStart(stream_s=3.0))
    assert p.on_event(Endpoint(at=0, last_voiced=0, forced=True)) == [
        end_of_speech(3.0, 0, 0, forced=True),
        FinalText(2, "", 0.0, reused_preflight=False),
    ]
    assert not p.waiting


def test_a_lone_filler_or_nothing_is_no_turn_to_ask_about():
    for dropped in ("Uh", "Um... hmm.", ""):
        p = policy()
        p.on_event(SpeechStart(stream_s=0.0))
        [preflight] = p.on_event(Pause(at=20 * FRAME))
        p.decoded(preflight, said(""))
        at = 26 * FRAME
        [_, rescue] = p.on_event(Endpoint(at=at, last_voiced=19 * FRAME))
        [whole] = p.decoded(rescue, said("", redecoded=True))
        heard = said("", redecoded=True)
        heard.dropped_text = dropped
        assert p.decoded(whole, heard) == [FinalText(1, "", at / S, True, unheard=False)], dropped


def test_a_one_word_answer_lost_by_the_quick_decode_is_found_by_the_whole_one():
    p = policy()
    p.on_event(SpeechStart(stream_s=0.0))
    [preflight] = p.on_event(Pause(at=20 * FRAME))
    p.decoded(preflight, said(""))
    p.on_event(Candidate())
    at = 26 * FRAME
    [_, rescue] = p.on_event(Endpoint(at=at, last_voiced=19 * FRAME))
    assert p.decoded(rescue, said("Firefox.", redecoded=True)) == [FinalText(1, "Firefox.", at / S, True)]
    assert not p.waiting  # found over the rescue's window: no full-window decode after it


def test_with_a_full_minimum_window_the_rescue_is_one_full_window_decode():
    """Where every streamed decode already has Whisper's full window (the gpu profile), the
    rescue is that window once: nothing wider is left to try after it."""
    p = policy(min_window_s=30.0)
    p.on_event(SpeechStart(stream_s=0.0))
    [preflight] = p.on_event(Pause(at=20 * FRAME))
    p.decoded(preflight, said(""))
    at = 26 * FRAME
    [_, rescue] = p.on_event(Endpoint(at=at, last_voiced=19 * FRAME))
    assert decodes([rescue]) == [(Kind.FINAL, 0, at, {"window_s": 30.0})]
    assert p.decoded(rescue, said("", redecoded=True)) == [FinalText(1, "", at / S, True)]


def test_a_failed_decode_fails_the_final_loudly_and_the_rest_quietly():
    p = policy()
    p.on_event(SpeechStart(stream_s=0.0))
    [preflight] = p.on_event(Pause(at=S))
    p.on_event(Resume(pause_s=0.2))  # demoted: an interim
    [last] = p.on_event(Pause(at=2 * S))
    at = 2 * S + 6 * FRAME
    p.on_event(Endpoint(at=at, last_voiced=2 * S))
    error = RuntimeError("CUDA out of memory")
    assert p.failed(preflight, error) == []  # its interim is not sent
    assert p.failed(last, error) == [DecodeFailed(error), FinalText(1, "", at / S, reused_preflight=True)]
    assert not p.waiting


def test_a_cancelled_decode_sends_nothing():
    p = policy()
    p.on_event(SpeechStart(stream_s=0.0))
    [preflight] = p.on_event(Pause(at=S))
    p.on_event(Endpoint(at=S + 6 * FRAME, last_voiced=S))
    assert p.cancelled(preflight) == []  # the stream closed
    assert not p.waiting
