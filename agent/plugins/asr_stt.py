"""STT plugin: the call's audio streams to services/asr, which finds the turns and transcribes
while the caller talks (see services/asr/protocol.py).

Service events map onto LiveKit's: speech_start -> START_OF_SPEECH, interim -> INTERIM,
preflight -> PREFLIGHT (the session may start the LLM on it; also sent for words held as
unfinished, turn_words.py), end_of_speech -> END_OF_SPEECH, final -> FINAL. With
`turn_detection="stt"` the service's endpoint ends the turn.

With the session's VAD ending turns, the service's finals inside one turn reach LiveKit as one
final (turn_words.py): the service may end an utterance at a pause the session's VAD hears through.

A final the service marks `unheard` (speech, but no words even decoded whole) goes to `on_unheard`:
LiveKit ends no turn on an empty transcript, so without it the caller would get no answer.

If the service cannot be reached, the call degrades instead of going deaf: the plugin records
the outage in `outage` (the session answers each turn with a short fallback) and reconnects every
`_RETRY_S`. A hung service (it keeps the stream open and answers nothing) is noticed per turn: the
session says where the caller stopped (`user_stopped`); no answer to /health within `_PROBE_S`
and no final meanwhile, and the stream is dropped as an outage and the turn handed to
`on_failure` (the session's fallback), ~0.6 s after the end of the turn. A stream the service
closed because nothing came for a while (a muted caller) is no outage: the next one opens at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import numpy as np
from livekit import rtc
from livekit.agents import APIConnectionError, APIConnectOptions, stt, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer

from services.asr.client import AsrClient, AsrError, AsrStream
from services.asr.protocol import (
    SAMPLE_RATE,
    EndOfSpeech,
    Error,
    Final,
    Interim,
    Preflight,
    SpeechStarted,
)
from services.audio import resample

from .turn_words import TurnWords

log = logging.getLogger("halfsec.agent")

Mark = Callable[[str], None]
Transcript = Callable[[str, str], None]  # ("preflight_transcript" | "final_transcript", text)
Frames = Callable[[], Awaitable[rtc.AudioFrame | None]]
_RETRY_S = 1.0  # while the service is away, try it again this often (a hung one: for this long);
# short: the first turn after it is back loses at most this much of its start
# At the session's end of turn /health is asked at once: no answer within `_PROBE_S` and no final
# meanwhile (one comes ~0.35 s after the end of turn here) is a hung service. A final merely late
# (a busy service still answers /health) gets its turn answered as usual.
_PROBE_S = 0.6


class _Idle(Exception):
    """The service closed a stream that sent it nothing for a while (the caller's audio stopped)."""


_FAILURES = (AsrError, aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


def to_pcm16_mono(buffer: AudioBuffer, rate: int = SAMPLE_RATE) -> bytes:
    """One utterance's frames as mono 16-bit PCM at `rate` (services/audio.py resamples)."""
    frame = rtc.combine_audio_frames(buffer)
    if frame.num_channels != 1:
        raise ValueError(f"expected mono audio, got {frame.num_channels} channels")
    return resample(np.frombuffer(frame.data, dtype=np.int16), frame.sample_rate, rate).tobytes()


class HalfsecSTT(stt.STT):
    """`on_failure`, when given, takes a failed one-shot recognition (the owner decides what the
    caller hears); `survive_outages` keeps a stream alive while the service is away, with the
    failure in `outage`. Without them, failures raise as LiveKit expects."""

    def __init__(
        self,
        client: AsrClient,
        *,
        language: str = "en",
        on_mark: Mark | None = None,
        on_transcript: Transcript | None = None,
        marks_end_of_turn: bool = False,
        unfinished_wait_s: float | None = None,
        on_failure: Callable[[Exception], None] | None = None,
        on_unheard: Callable[[], None] | None = None,
        survive_outages: bool = False,
        streaming: bool = True,
    ) -> None:
        # streaming=False: LiveKit cuts each utterance with the session's VAD and calls
        # `_recognize_impl` (the service's one-shot HTTP path) after it ends
        super().__init__(capabilities=stt.STTCapabilities(streaming=streaming, interim_results=streaming))
        self._client = client
        self._language = LanguageCode(language)
        self._mark = on_mark or (lambda _: None)
        self._transcript = on_transcript or (lambda kind, text: None)
        # with `turn_detection="stt"` the service's endpoint ends the turn (else the session's VAD)
        self._marks_end_of_turn = marks_end_of_turn
        self._unfinished_wait_s = unfinished_wait_s  # turn_words.py
        self.on_failure = on_failure
        self.on_unheard = on_unheard
        self.survive_outages = survive_outages
        self.outage: Exception | None = None  # set while the service cannot be reached
        self._stream: AsrSpeechStream | None = None  # the call's open stream

    def user_started(self) -> None:
        """The session's VAD heard the caller start: a final is due once they stop."""
        if self._stream is not None:
            self._stream.final_seen = False
            if not self._marks_end_of_turn:
                self._stream.turn.caller_started()

    def user_stopped(self) -> None:
        """The session's VAD ended the caller's turn: the words held for it go to LiveKit, and
        the final is watched for (a hung service)."""
        if self._stream is not None:
            if not self._marks_end_of_turn:
                self._stream.turn.caller_stopped()
            if self.outage is None:
                self._stream.watch_final()

    @property
    def model(self) -> str:
        return "faster-whisper"

    @property
    def provider(self) -> str:
        return "halfsec"

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> AsrSpeechStream:
        self._stream = AsrSpeechStream(self, conn_options)
        return self._stream

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        """One whole utterance (LiveKit's non-streaming API), over the service's HTTP path."""
        self._mark("stt_request")
        try:
            result = await asyncio.wait_for(self._client.transcribe(to_pcm16_mono(buffer)), conn_options.timeout)
        except _FAILURES as exc:
            if self.on_failure is None:
                raise APIConnectionError(f"ASR service: {exc}") from exc
            self.on_failure(exc)
            return self.event(stt.SpeechEventType.FINAL_TRANSCRIPT, "")
        self._transcript("final_transcript", result.text)
        return self.event(stt.SpeechEventType.FINAL_TRANSCRIPT, result.text)

    def event(self, kind: stt.SpeechEventType, text: str | None = None) -> stt.SpeechEvent:
        alternatives = [] if text is None else [stt.SpeechData(language=self._language, text=text)]
        return stt.SpeechEvent(type=kind, request_id=utils.shortuuid(), alternatives=alternatives)

    async def aclose(self) -> None:
        await self._client.aclose()


class AsrSpeechStream(stt.RecognizeStream):
    def __init__(self, owner: HalfsecSTT, conn_options: APIConnectOptions) -> None:
        super().__init__(stt=owner, conn_options=conn_options, sample_rate=SAMPLE_RATE)
        self._owner = owner
        self.final_seen = True  # no turn is waiting for its final
        self._stalled = asyncio.Event()  # set by the watchdog: the service hangs
        self._watchdog: asyncio.Task[None] | None = None
        self.turn = TurnWords(
            final=self._final,
            interim=self._interim,
            unfinished_wait_s=owner._unfinished_wait_s,
            preflight=self._preflight,
        )
        self._preflighted = ""  # the words of this turn's last preflight

    def watch_final(self) -> None:
        if not self.final_seen and (self._watchdog is None or self._watchdog.done()):
            self._watchdog = asyncio.create_task(self._watch_final(), name="asr-final-watchdog")

    async def _watch_final(self) -> None:
        """No final after the end of the turn, and no answer to /health: the service hangs. The
        turn is answered with the fallback now; the stream is dropped and retried as an outage."""
        if await self._owner._client.answers(_PROBE_S) or self.final_seen:
            return
        exc = AsrError(f"no final and no answer to /health {_PROBE_S} s after the end of the turn")
        log.warning("ASR service hangs (%s): fallback until it is back", exc)
        self._owner.outage = exc
        self.turn.reset()
        self._stalled.set()
        if self._owner.on_failure is not None:
            self._owner.on_failure(exc)

    async def _run(self) -> None:
        frames = self._next_frame
        try:
            while True:
                try:
                    stream = await self._connect(frames)
                except _FAILURES as exc:
                    if not await self._degraded(exc, frames):
                        return
                    continue
                self._owner.outage = None
                self._stalled.clear()
                try:
                    if await self._pump_or_stall(stream, frames):
                        return
                except _Idle:
                    # No outage and no audio dropped: the next stream opens now and waits for audio.
                    log.info("ASR stream closed after a silence of the input: reopening it")
                except _FAILURES as exc:
                    if not await self._degraded(exc, frames):
                        return
                finally:
                    # a hung service never answers the close handshake
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(_PROBE_S):
                            await stream.aclose()
        finally:
            if self._watchdog is not None:
                await utils.aio.cancel_and_wait(self._watchdog)

    async def _connect(self, frames: Frames) -> AsrStream:
        """Open a stream. During an outage a hung service gets `_RETRY_S`, and the audio meanwhile
        is dropped (its turns got the fallback), not sent as a stale backlog once it is back."""
        if self._owner.outage is None:
            return await self._owner._client.stream()
        drain = asyncio.create_task(self._drain(frames))
        try:
            async with asyncio.timeout(_RETRY_S):
                return await self._owner._client.stream()
        finally:
            await utils.aio.cancel_and_wait(drain)

    @staticmethod
    async def _drain(frames: Frames) -> None:
        while await frames() is not None:
            pass

    async def _pump_or_stall(self, stream: AsrStream, frames: Frames) -> bool:
        """`_pump`, unless the watchdog finds the service hung first."""
        pump = asyncio.create_task(self._pump(stream, frames))
        stalled = asyncio.create_task(self._stalled.wait())
        try:
            await asyncio.wait({pump, stalled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await utils.aio.cancel_and_wait(stalled)
            if not pump.done():
                await utils.aio.cancel_and_wait(pump)
        if pump.done() and not pump.cancelled():
            return pump.result()
        raise AsrError(f"ASR service hangs ({self._owner.outage})")

    async def _next_frame(self) -> rtc.AudioFrame | None:
        """The next input frame, None once the input has ended. Safe to cancel (unlike an
        async generator), so the service connection and the fallback VAD can take turns."""
        while True:
            try:
                item = await self._input_ch.recv()
            except utils.aio.ChanClosed:
                return None
            if isinstance(item, rtc.AudioFrame):
                if item.num_channels != 1:  # LiveKit hands STT mono; anything else is a bug
                    raise ValueError(f"expected mono audio, got {item.num_channels} channels")
                return item

    async def _pump(self, stream: AsrStream, frames: Frames) -> bool:
        """Audio to the service and its events back; True once the input has ended."""

        async def send() -> None:
            while (frame := await frames()) is not None:
                await stream.send(bytes(frame.data))
            await stream.end()

        sending = asyncio.create_task(send())
        try:
            async for event in stream.events():
                self._on(event)
            if not sending.done():
                raise AsrError("ASR service closed the stream")
            await sending
            return True
        finally:
            await utils.aio.cancel_and_wait(sending)

    def _on(self, event: object) -> None:
        owner, emit, kind = self._owner, self._event_ch.send_nowait, stt.SpeechEventType
        log.debug("ASR event: %r", event)
        if isinstance(event, SpeechStarted):
            self.turn.utterance_started()
            emit(owner.event(kind.START_OF_SPEECH))
        elif isinstance(event, Interim):
            self._interim(self.turn.prefixed(event.text))
        elif isinstance(event, Preflight):
            self._preflight(self.turn.prefixed(event.text))
        elif isinstance(event, EndOfSpeech):
            if owner._marks_end_of_turn:
                owner._mark("end_of_turn")
            emit(owner.event(kind.END_OF_SPEECH))
        elif isinstance(event, Final):
            self.final_seen = True
            # (held words, or the caller still talking: the turn has words yet)
            if event.unheard and owner.on_unheard is not None and not self.turn.holding:
                owner.on_unheard()  # first: the request to repeat answers this turn
            self.turn.final(event.text)
        elif isinstance(event, Error):
            if event.reason == "idle":
                raise _Idle(event.message)
            if event.fatal:
                raise AsrError(event.message)
            log.warning("ASR service: %s", event.message)

    def _preflight(self, text: str) -> None:
        # LiveKit restarts its preemptive reply on every preflight, the same words or not
        if text == self._preflighted:
            return
        self._preflighted = text
        self._owner._transcript("preflight_transcript", text)
        self._event_ch.send_nowait(self._owner.event(stt.SpeechEventType.PREFLIGHT_TRANSCRIPT, text))

    def _final(self, text: str) -> None:
        self._preflighted = ""
        self._owner._transcript("final_transcript", text)
        self._event_ch.send_nowait(self._owner.event(stt.SpeechEventType.FINAL_TRANSCRIPT, text))

    def _interim(self, text: str) -> None:
        self._event_ch.send_nowait(self._owner.event(stt.SpeechEventType.INTERIM_TRANSCRIPT, text))

    async def _degraded(self, exc: Exception, frames: Frames) -> bool:
        """The service is away: record the outage (the session answers each turn the caller
        finishes meanwhile with a short fallback; its VAD, not ours, decides where turns end),
        drop audio for `_RETRY_S`, then try again. False once the input has ended."""
        if not self._owner.survive_outages:
            raise APIConnectionError(f"ASR service: {exc}") from exc
        if self._owner.outage is None:
            log.warning("ASR service unavailable (%s): fallback until it is back", exc)
            self.turn.reset()
        self._owner.outage = exc
        try:
            async with asyncio.timeout(_RETRY_S):
                while await frames() is not None:
                    pass
                return False
        except TimeoutError:
            return True
