"""What one stream decodes when, and which transcripts it sends: a pure state machine.

Rules (positions are utterance samples; every decode goes through the shared DecodeScheduler):
  - at a pause (`asr.preflight_after_s` of silence): everything since the last settled segment.
    If the caller stays silent until the endpoint, that decode is the final: sent as `preflight`
    when ready, and reused as `final` at the endpoint, so normally nothing is left to decode then;
  - if the caller speaks again after a long enough pause (`asr.commit_pause_s`) and enough speech
    (`asr.commit_min_s`), that decode is committed (the words before a silence are settled),
    otherwise it counts as an interim;
  - while the caller talks on: interims with Whisper's phrase timestamps, at least
    `asr.interim_interval_s` apart and further apart as the piece grows; phrases that ended well
    before the newest audio settle, so later decodes cover only the rest;
  - a piece nearing Whisper's 30 s window (`asr.max_segment_s`) is cut at its quietest frame and
    committed; mid-pause, the preflight is committed instead;
  - at the endpoint with no preflight: the rest since the last settled segment, as the final;
  - a final is the settled segments plus the last piece, joined in order (transcript.py); a
    doubtful decode among them (it stutters or trails off) is decoded again over the full window
    first. Preflights and interims go out as they are: most are never the final.

In: the endpointer's events, the utterance's length after each piece of audio, and decode
outcomes. Out: `Action`s, in order: decodes to submit, kinds to change in the queue, and the
events to send. No clock, no audio, no asyncio: the stream (stream.py) does those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from configs.settings import AsrSettings

from .decodes import DecodeRequest
from .endpointer import FRAME, Endpoint, Event, Pause, Resume, SpeechStart
from .engine import Decoded, doubtful
from .protocol import SAMPLE_RATE, EndOfSpeech, Interim, Preflight, SpeechStarted
from .scheduler import Kind
from .transcript import Assembly, Segments

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


@dataclass(frozen=True)
class DecodeFailed:
    """A final's decode failed: reported, then the final is sent empty."""

    error: BaseException


Action = DecodeRequest | Reclassify | SpeechStarted | EndOfSpeech | Interim | Preflight | FinalText | DecodeFailed


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


class StreamPolicy:
    def __init__(self, opts: AsrSettings, quietest: Quietest) -> None:
        self._opts = opts
        self._quietest = quietest
        self.utterance = 0  # counts utterances, so late interims of an old one are dropped
        self.in_speech = False
        self._segments = Segments()
        self._preflight: DecodeRequest | None = None  # decoded at the pause the caller is in
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
            self._expect(Kind.PREFLIGHT, self._preflight)
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
        self._out.append(SpeechStarted(stream_s=event.stream_s))

    def _resume(self, event: Resume) -> None:
        preflight, self._preflight = self._preflight, None
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
        self._expect(Kind.FINAL, tail, audio_s=event.at / SAMPLE_RATE, reused_preflight=reused)
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
        request = DecodeRequest(kind, self._segments.undecided_from, end, **options)
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
        """A final's piece decoded again over the full window, if its text is doubtful and no
        decode of it had the full window yet."""
        assert request.result is not None
        if request.again is not None or request.result.redecoded or not doubtful(request.result.text):
            return None
        return DecodeRequest(Kind.FINAL, request.start, request.end, full_window=True, again=request)

    # -- transcripts out ------------------------------------------------------------------

    def _expect(
        self, kind: Kind, tail: DecodeRequest | None, audio_s: float = 0.0, reused_preflight: bool = False
    ) -> None:
        """Send a `kind` transcript of the settled parts and `tail` once they are decoded."""
        parts = [*self._segments.parts, tail] if tail is not None else self._segments.parts
        pending = _Pending(kind, Assembly(parts), self.utterance, tail, audio_s, reused_preflight)
        if not self._advance(pending):
            self._pending.append(pending)

    def _completed(self) -> list[Action]:
        self._pending = [pending for pending in self._pending if not self._advance(pending)]
        return self._take()

    def _advance(self, pending: _Pending) -> bool:
        """Take what is decoded of `pending`; send it once complete. True when it is done with."""
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
            redo = self._redo(request) if pending.kind is Kind.FINAL else None
            if redo is not None:
                pending.assembly.swap(redo)
                self._out.append(redo)
                continue
            pending.assembly.take(request.result.text)
        self._send(pending)
        return True

    def _send(self, pending: _Pending) -> None:
        text = pending.assembly.text
        if pending.kind is Kind.FINAL:
            self._out.append(FinalText(pending.utterance, text, pending.audio_s, pending.reused_preflight))
        elif pending.kind is Kind.PREFLIGHT:
            assert pending.tail is not None
            if pending.tail.kind is Kind.PREFLIGHT and text:  # not demoted: the caller did not speak again
                self._out.append(Preflight(text=text))
        elif pending.utterance == self.utterance and self.in_speech and text:
            self._out.append(Interim(text=text))

    def _take(self) -> list[Action]:
        out, self._out = self._out, []
        return out
