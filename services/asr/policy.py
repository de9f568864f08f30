"""What one stream decodes when, and which transcripts it sends: a pure state machine.

Rules (positions are utterance samples; every decode goes through the shared DecodeScheduler):
  - at a pause (`asr.pause_decode_s` of silence): everything since the last settled segment.
    If the caller stays silent until the endpoint, that decode is the final: sent as `preflight`
    once the pause is an end-of-speech candidate (`asr.preflight_after_s`; shorter pauses inside
    an utterance start no reply) and the decode is trustworthy, and reused as `final` at the
    endpoint, so normally nothing is left to decode then;
  - if the caller speaks again after a long enough pause (`asr.commit_pause_s`) and enough speech
    (`asr.commit_min_s`), that decode is committed (the words before a silence are settled),
    otherwise it counts as an interim;
  - while the caller talks on: interims with Whisper's phrase timestamps, at least
    `asr.interim_interval_s` apart and further apart as the piece grows; phrases that ended well
    before the newest audio settle, so later decodes cover only the rest;
  - a piece nearing Whisper's 30 s window (`asr.max_segment_s`) is cut at its quietest frame and
    committed; mid-pause, the preflight is committed instead;
  - at the endpoint with no preflight: the rest since the last settled segment, as the final;
  - a final is the settled segments plus the last piece, joined in order (transcript.py), made
    trustworthy first: a doubtful decode among the pieces (it stutters, breaks off in a word, or loops) is
    decoded again over the full window, and if no words come of a whole utterance, all of it is
    decoded over a wider window (`asr.rescue_window_s`, then the full one); a final still empty
    then is `unheard` if Whisper heard words its gates dropped (the agent asks the caller to repeat).
    A doubtful preflight is not sent (no reply starts on it); interims go out as they are: most
    are never the final.

In: the endpointer's events, the utterance's length after each piece of audio, and decode
outcomes. Out: `Action`s, in order: decodes to submit, kinds to change in the queue, and the
events to send. No clock, no audio, no asyncio: the stream (stream.py) does those.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from configs.settings import AsrSettings

from .decodes import DecodeRequest
from .endpointer import FRAME, Candidate, Endpoint, Event, Pause, Resume, SpeechStart
from .engine import WINDOW_S, Decoded, doubtful
from .protocol import SAMPLE_RATE, EndOfSpeech, Interim, Preflight, SpeechStarted
from .scheduler import Kind
from .transcript import Assembly, Part, Segments

# A hesitation, not an answer: an utterance of only these is no turn to ask about.
_FILLER = re.compile(r"(?:uh+|um+|ah+|hm+|mm+|mhm|er+)", re.IGNORECASE)
_CUT_SEARCH_S = 3.0  # a forced cut looks this far back for the quietest frame
_SETTLE_GUARD_S = 1.0  # a phrase ending closer than this to the newest audio may still change

Quietest = Callable[[int, int], int]  # [start, end) -> the end of its least speech-like frame


@dataclass(frozen=True)
class Reclassify:
    """A submitted decode changed kind: the queue ranks it (and may replace it) as `kind` now."""

    request: DecodeRequest
    kind: Kind


@dataclass(frozen=True)
class FinalText:
    """The final transcript of `utterance` (the stream times it from its endpoint)."""

    utterance: int
    text: str
    audio_s: float
    reused_preflight: bool
    unheard: bool = False  # speech, but no words came of it even decoded whole


@dataclass(frozen=True)
class DecodeFailed:
    """A final's decode failed: reported, then the final is sent empty."""

    error: BaseException


Action = DecodeRequest | Reclassify | SpeechStarted | EndOfSpeech | Interim | Preflight | FinalText | DecodeFailed


def _heard_words(rescue: Part) -> bool:
    """Whisper's whole-utterance decode had words before its gates dropped them (not nothing,
    not only "uh"): something was said that the agent should ask about. Measured on the dev set's
    fillers: a lone "uh" came back as "Uh", dropped as no speech (no_speech 0.61)."""
    if not isinstance(rescue, DecodeRequest) or rescue.result is None:
        return False
    words = re.findall(r"[\w']+", rescue.result.dropped_text)
    return any(not _FILLER.fullmatch(word) for word in words)


def _finished(phrase: str) -> bool:
    """A phrase Whisper closed with punctuation. One ending in a cut word ("old-s-y-y-y-") or
    trailing off ("ill...") is unsure of its words, and its end timestamp may lie past words it
    swallowed: settling it would lose them (seen in a call: "young man" vanished so)."""
    return phrase[-1:] in ".?!,;:" and not phrase.endswith("...") and not phrase.rstrip(".?!,;:").endswith("-")


@dataclass
class _Pending:
    """A transcript to send once its decodes are in. `kind` says which: INTERIM, PREFLIGHT, FINAL."""

    kind: Kind
    assembly: Assembly
    utterance: int
    tail: DecodeRequest | None = None  # the last piece: a preflight is sent only while it is one
    audio_s: float = 0.0  # a final's
    reused_preflight: bool = False
    end: int = 0  # where its audio ends: a rescue decodes the utterance up to here
    rescued: int = 0  # its pieces said nothing: the whole utterance's decodes so far (`_rescue`)


class StreamPolicy:
    def __init__(self, opts: AsrSettings, quietest: Quietest) -> None:
        self._opts = opts
        self._quietest = quietest
        self.utterance = 0  # counts utterances, so late interims of an old one are dropped
        self.in_speech = False
        self._segments = Segments()
        self._preflight: DecodeRequest | None = None  # decoded at the pause the caller is in
        self._candidate = False  # that pause is long enough for a preflight to go out
        self._held: str | None = None  # the preflight's text, decoded before the pause was
        self._last: DecodeRequest | None = None  # one decode at a time per stream (redos aside)
        self._pending: list[_Pending] = []
        self._out: list[Action] = []

    @property
    def waiting(self) -> bool:
        """Transcripts not sent yet (each waits on a decode in flight)."""
        return bool(self._pending)

    # -- in -------------------------------------------------------------------------------

    def on_event(self, event: Event) -> list[Action]:
        if isinstance(event, SpeechStart):
            self._speech_start(event)
        elif isinstance(event, Pause):
            self._preflight = self._submit(Kind.PREFLIGHT, event.at, retry_doubtful=False)
            self._expect(Kind.PREFLIGHT, self._preflight, end=event.at)
        elif isinstance(event, Candidate):
            self._candidate = True
            if self._held is not None:
                self._out.append(Preflight(text=self._held))
                self._held = None
        elif isinstance(event, Resume):
            self._resume(event)
        elif isinstance(event, Endpoint):
            self._endpoint(event)
        return self._take()

    def heard(self, length: int) -> list[Action]:
        """The utterance is `length` samples long now: after the events of each piece of audio."""
        if self.in_speech:
            self._maybe_cut(length)
            self._maybe_interim(length)
        return self._take()

    def decoded(self, request: DecodeRequest, result: Decoded) -> list[Action]:
        request.result = result
        if request.timestamps:  # settle first: the interim itself is sent as it was decoded
            self._settle(request)
        return self._completed()

    def failed(self, request: DecodeRequest, error: BaseException) -> list[Action]:
        request.error = error
        return self._completed()

    def cancelled(self, request: DecodeRequest) -> list[Action]:
        request.cancelled = True
        return self._completed()

    # -- events ---------------------------------------------------------------------------

    def _speech_start(self, event: SpeechStart) -> None:
        # `_last` stays: the old utterance's decode may still run, and a stream runs one at a time
        self.utterance += 1
        self.in_speech = True
        self._segments = Segments(base=round(event.stream_s * SAMPLE_RATE))
        self._preflight = None
        self._candidate, self._held = False, None
        self._out.append(SpeechStarted(stream_s=event.stream_s))

    def _resume(self, event: Resume) -> None:
        preflight, self._preflight = self._preflight, None
        self._candidate, self._held = False, None
        if preflight is None or preflight.cancelled:
            return
        if (
            preflight.end - self._segments.undecided_from >= self._opts.commit_min_s * SAMPLE_RATE
            and event.pause_s >= self._opts.commit_pause_s
        ):
            self._commit(preflight)
        else:
            self._reclassify(preflight, Kind.INTERIM)
            self._expect(Kind.INTERIM, preflight)

    def _endpoint(self, event: Endpoint) -> None:
        self.in_speech = False
        base = self._segments.base
        self._out.append(
            EndOfSpeech(
                stream_s=(base + event.at) / SAMPLE_RATE,
                last_voiced_s=(base + event.last_voiced) / SAMPLE_RATE,
                forced=event.forced,
            )
        )
        tail, reused = self._preflight, self._preflight is not None
        if tail is None and event.at > self._segments.undecided_from:
            # checked for doubt as a final anyway (`_redo`): no retry of its own
            tail = self._submit(Kind.FINAL, event.at, retry_doubtful=False)
        self._expect(Kind.FINAL, tail, audio_s=event.at / SAMPLE_RATE, reused_preflight=reused, end=event.at)
        self._segments.parts, self._preflight = [], None

    def _maybe_cut(self, length: int) -> None:
        """Keep the undecided piece inside one Whisper window."""
        start = self._segments.undecided_from
        if length - start < self._opts.max_segment_s * SAMPLE_RATE:
            return
        if self._preflight is not None:  # mid-pause: the words before it are settled
            preflight, self._preflight = self._preflight, None
            self._commit(preflight)
            return
        cut = self._quietest(max(start, length - int(_CUT_SEARCH_S * SAMPLE_RATE)), length)
        self._commit(self._submit(Kind.COMMIT, cut))

    def _maybe_interim(self, length: int) -> None:
        """An interim while the caller talks on: the undecided piece, with Whisper's phrase
        timestamps, so phrases that ended well before the newest audio can be settled. The
        next one waits at least as long as the piece is, which bounds decoding to about one
        second per second of speech however long the turn."""
        if not self._opts.interim_interval_s or self._preflight is not None:
            return
        if self._last is not None and not self._last.done:
            return  # one decode at a time per stream; the next one will be fresher anyway
        segments = self._segments
        last_piece = segments.decoded_until - segments.undecided_from  # what the previous decode covered
        wait = max(self._opts.interim_interval_s * SAMPLE_RATE, last_piece)
        if length - segments.decoded_until < wait:
            return
        # throw-away: not worth a second decode when doubtful
        interim = self._submit(Kind.INTERIM, length, timestamps=True, retry_doubtful=False)
        self._expect(Kind.INTERIM, interim)

    def _settle(self, interim: DecodeRequest) -> None:
        """Commit the phrases of a finished interim that ended `_SETTLE_GUARD_S` before its
        audio did: later decodes start after them."""
        segments = self._segments
        if self._last is not interim or self._preflight is not None or segments.undecided_from != interim.start:
            return  # a newer decode already covers this audio from `interim.start`
        assert interim.result is not None
        piece_s = (interim.end - interim.start) / SAMPLE_RATE
        phrases = interim.result.phrases
        texts = [text for _, text in phrases]
        if piece_s < self._opts.commit_min_s or len(set(texts)) < len(texts):
            return  # short pieces loop ("He was not. He was not."): never settle from those
        settled: list[tuple[float, str]] = []
        for end, text in phrases:  # the leading run of finished phrases, nothing after a doubt
            if end > piece_s - _SETTLE_GUARD_S or not _finished(text):
                break
            settled.append((end, text))
        if settled:
            until = interim.start + round(settled[-1][0] * SAMPLE_RATE / FRAME) * FRAME
            segments.settle((text for _, text in settled), until)

    # -- decodes --------------------------------------------------------------------------

    def _submit(self, kind: Kind, end: int, **options: bool) -> DecodeRequest:
        """A decode of the undecided piece up to `end`."""
        request = DecodeRequest(kind, self._segments.undecided_from, end, utterance=self.utterance, **options)
        self._segments.asked(end)
        self._last = request
        self._out.append(request)
        return request

    def _commit(self, request: DecodeRequest) -> None:
        self._reclassify(request, Kind.COMMIT)
        self._segments.settle([request], request.end)

    def _reclassify(self, request: DecodeRequest, kind: Kind) -> None:
        if request.kind is not kind:
            request.kind = kind
            self._out.append(Reclassify(request, kind))

    def _redo(self, request: DecodeRequest) -> DecodeRequest | None:
        """A piece decoded again over the full window, if its text is doubtful and no decode of
        it had the full window yet. One redo per piece: the preflight's is the final's."""
        assert request.result is not None
        if request.redo is None and not request.result.redecoded and doubtful(request.result.text):
            request.redo = DecodeRequest(Kind.FINAL, request.start, request.end, request.utterance, window_s=WINDOW_S)
            self._out.append(request.redo)
        return request.redo

    def _rescue(self, pending: _Pending) -> DecodeRequest | None:
        """The whole utterance (up to Whisper's window) decoded over a wider window, when no
        words came of its pieces: `asr.rescue_window_s`, then, if still none, the full 30 s
        window; None once both were tried. Made once per utterance: the preflight's are the
        final's."""
        tail = pending.tail
        assert tail is not None
        windows = sorted({max(self._opts.rescue_window_s, self._opts.min_window_s), WINDOW_S})
        if pending.rescued == len(windows):
            return None
        window_s = windows[pending.rescued]
        if tail.rescue is None or tail.rescue.window_s != window_s:
            start = max(0, pending.end - round((WINDOW_S - 1.0) * SAMPLE_RATE))
            tail.rescue = DecodeRequest(Kind.FINAL, start, pending.end, tail.utterance, window_s=window_s)
            self._out.append(tail.rescue)
        return tail.rescue

    # -- transcripts out ------------------------------------------------------------------

    def _expect(
        self,
        kind: Kind,
        tail: DecodeRequest | None,
        audio_s: float = 0.0,
        reused_preflight: bool = False,
        end: int = 0,
    ) -> None:
        """Send a `kind` transcript of the settled parts and `tail` once they are decoded."""
        parts = [*self._segments.parts, tail] if tail is not None else self._segments.parts
        pending = _Pending(kind, Assembly(parts), self.utterance, tail, audio_s, reused_preflight, end)
        if not self._advance(pending):
            self._pending.append(pending)

    def _completed(self) -> list[Action]:
        self._pending = [pending for pending in self._pending if not self._advance(pending)]
        return self._take()

    def _advance(self, pending: _Pending) -> bool:
        """Take what is decoded of `pending`; send it once complete. True when it is done with."""
        final = pending.kind is Kind.FINAL
        while (request := pending.assembly.waiting_on()) is not None:
            if not request.done:
                return False
            if request.cancelled:
                return True  # the stream closed: nobody to send it to
            if request.error is not None:
                if pending.kind is Kind.FINAL:  # interims and preflights fail quietly: the final reports
                    self._out.append(DecodeFailed(request.error))
                    self._out.append(FinalText(pending.utterance, "", pending.audio_s, pending.reused_preflight))
                return True
            assert request.result is not None
            redo = self._redo(request) if final and not pending.rescued else None
            if redo is not None:
                pending.assembly.swap(redo)
                continue
            pending.assembly.take(request.result.text)
            if final and pending.assembly.complete and not pending.assembly.text:
                if pending.tail is None or (rescue := self._rescue(pending)) is None:
                    break  # nothing was left to decode (no speech to rescue), or nothing wider
                pending.assembly, pending.rescued = Assembly([rescue]), pending.rescued + 1
        self._send(pending)
        return True

    def _send(self, pending: _Pending) -> None:
        text = pending.assembly.text
        if pending.kind is Kind.FINAL:
            unheard = not text and pending.rescued and _heard_words(pending.assembly.parts[0])
            self._out.append(FinalText(pending.utterance, text, pending.audio_s, pending.reused_preflight, unheard))
        elif pending.kind is Kind.PREFLIGHT:
            assert pending.tail is not None
            if pending.tail.kind is not Kind.PREFLIGHT or not text:
                return  # demoted (the caller spoke again), or no words yet
            if any(
                isinstance(part, DecodeRequest) and part.result and doubtful(part.result.text)
                for part in pending.assembly.parts
            ):
                return  # the final decodes it again: a reply must not start on these words
            if self._candidate:
                self._out.append(Preflight(text=text))
            else:  # a short pause so far: out once it is long enough to be an end of speech
                self._held = text
        elif pending.utterance == self.utterance and self.in_speech and text:
            self._out.append(Interim(text=text))

    def _take(self) -> list[Action]:
        out, self._out = self._out, []
        return out
