"""STT plugin: the utterance the session's VAD cut is sent to services/asr as 16 kHz PCM.

Not streaming (yet): LiveKit wraps it with its VAD-driven StreamAdapter, so the decode starts when
the VAD says speech ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from livekit import rtc
from livekit.agents import APIConnectionError, APIConnectOptions, stt, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer

from services.asr.client import AsrClient, AsrError
from services.asr.protocol import SAMPLE_RATE

Mark = Callable[[str], None]


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
    """`on_failure`, when given, takes ASR failures: the turn then yields an empty transcript
    (so LiveKit neither retries into silence nor counts it toward closing the session) and the
    owner decides what the caller hears. Without it, failures raise as LiveKit expects."""

    def __init__(
        self,
        client: AsrClient,
        *,
        language: str = "en",
        on_mark: Mark | None = None,
        on_failure: Callable[[Exception], None] | None = None,
    ) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._client = client
        self._language = LanguageCode(language)
        self._mark = on_mark or (lambda _: None)
        self.on_failure = on_failure

    @property
    def model(self) -> str:
        return "faster-whisper"

    @property
    def provider(self) -> str:
        return "halfsec"

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        pcm = to_pcm16_mono(buffer)
        self._mark("stt_request")
        try:
            result = await asyncio.wait_for(self._client.transcribe(pcm), conn_options.timeout)
        except (AsrError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            if self.on_failure is None:
                raise APIConnectionError(f"ASR service: {exc}") from exc
            self.on_failure(exc)
            return self._final("")
        self._mark("final_transcript")
        return self._final(result.text)

    def _final(self, text: str) -> stt.SpeechEvent:
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=utils.shortuuid(),
            alternatives=[stt.SpeechData(language=self._language, text=text)],
        )

    async def aclose(self) -> None:
        await self._client.aclose()
