"""STT plugin: the call's audio streams to services/asr, which finds the turns and transcribes
while the caller talks (see services/asr/protocol.py).

Service events map onto LiveKit's: speech_start -> START_OF_SPEECH, interim -> INTERIM,
preflight -> PREFLIGHT (the session may start the LLM on it), end_of_speech -> END_OF_SPEECH,
final -> FINAL. With `turn_detection="stt"` the service's endpoint ends the turn.

If the service cannot be reached, the call degrades instead of going deaf: a local Silero VAD
finds the caller's turns, each gets `on_failure` (the session speaks a short fallback), and the
plugin reconnects at the next turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp
from livekit import rtc
from livekit.agents import APIConnectionError, APIConnectOptions, stt, utils, vad
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

log = logging.getLogger("halfsec.agent")

Mark = Callable[[str], None]
Frames = Callable[[], Awaitable[rtc.AudioFrame | None]]
_FAILURES = (AsrError, aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


def to_pcm16_mono(buffer: AudioBuffer, rate: int = SAMPLE_RATE) -> bytes:
    """One utterance's frames as mono 16-bit PCM at `rate`, via LiveKit's resampler."""
    frame = rtc.combine_audio_frames(buffer)
    if frame.num_channels != 1:
        raise ValueError(f"expected mono audio, got {frame.num_channels} channels")
    if frame.sample_rate == rate:
        return bytes(frame.data)
    resampler = rtc.AudioResampler(frame.sample_rate, rate, num_channels=1)
    out = resampler.push(frame) + resampler.flush()
    return b"".join(bytes(f.data) for f in out)


class HalfsecSTT(stt.STT):
    """`on_failure`, when given, takes ASR failures (the owner decides what the caller hears)
    and `fallback_vad` finds turns while the service is away. Without them, failures raise as
    LiveKit expects."""

    def __init__(
        self,
        client: AsrClient,
        *,
        language: str = "en",
        on_mark: Mark | None = None,
        on_failure: Callable[[Exception], None] | None = None,
        fallback_vad: vad.VAD | None = None,
    ) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=True))
        self._client = client
        self._language = LanguageCode(language)
        self._mark = on_mark or (lambda _: None)
        self.on_failure = on_failure
        self._fallback_vad = fallback_vad

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
        return AsrSpeechStream(self, conn_options)

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
        self._mark("final_transcript")
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

    async def _run(self) -> None:
        frames = self._next_frame
        while True:
            try:
                stream = await self._owner._client.stream()
            except _FAILURES as exc:
                if not await self._degraded(exc, frames):
                    return
                continue
            try:
                if await self._pump(stream, frames):
                    return
            except _FAILURES as exc:
                if not await self._degraded(exc, frames):
                    return
            finally:
                await stream.aclose()

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
        mark, emit, kind = self._owner._mark, self._event_ch.send_nowait, stt.SpeechEventType
        if isinstance(event, SpeechStarted):
            emit(self._owner.event(kind.START_OF_SPEECH))
        elif isinstance(event, Interim):
            emit(self._owner.event(kind.INTERIM_TRANSCRIPT, event.text))
        elif isinstance(event, Preflight):
            mark("preflight_transcript")
            emit(self._owner.event(kind.PREFLIGHT_TRANSCRIPT, event.text))
        elif isinstance(event, EndOfSpeech):
            mark("end_of_turn")
            emit(self._owner.event(kind.END_OF_SPEECH))
        elif isinstance(event, Final):
            mark("final_transcript")
            emit(self._owner.event(kind.FINAL_TRANSCRIPT, event.text))
        elif isinstance(event, Error):
            if event.fatal:
                raise AsrError(event.message)
            log.warning("ASR service: %s", event.message)

    async def _degraded(self, exc: Exception, frames: Frames) -> bool:
        """The service is away: a local VAD finds the caller's next turn, which gets the
        fallback; then try the service again. False once the input has ended."""
        if self._owner.on_failure is None or self._owner._fallback_vad is None:
            raise APIConnectionError(f"ASR service: {exc}") from exc
        log.warning("ASR service unavailable (%s): fallback until it is back", exc)
        vad_stream = self._owner._fallback_vad.stream()
        try:
            async def feed() -> None:
                while (frame := await frames()) is not None:
                    vad_stream.push_frame(frame)
                vad_stream.end_input()

            feeding = asyncio.create_task(feed())
            try:
                async for ev in vad_stream:
                    if ev.type == vad.VADEventType.END_OF_SPEECH:
                        self._owner.on_failure(exc)
                        return True
                return False
            finally:
                await utils.aio.cancel_and_wait(feeding)
        finally:
            await vad_stream.aclose()
