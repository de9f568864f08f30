"""TTS plugin: text goes to services/tts, PCM streams back into LiveKit's audio emitter.

Not streaming text-in (yet): LiveKit's StreamAdapter cuts the LLM's text with the tokenizer it is
given, ours (chunking.py: the reply's first sentence at its clauses, later sentences whole), and
calls `synthesize` per chunk; audio of each comes back as it is produced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from livekit.agents import APIConnectionError, APIConnectOptions, tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

from services.tts.client import TtsClient, TtsError
from services.tts.protocol import SAMPLE_RATE

Mark = Callable[[str], None]
_FRAME_MS = 20


class HalfsecTTS(tts.TTS):
    def __init__(
        self,
        client: TtsClient,
        *,
        voice: str | None = None,
        speed: float | None = None,
        on_mark: Mark | None = None,
    ) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=SAMPLE_RATE, num_channels=1)
        self._client = client
        self.voice, self.speed = voice, speed
        self._mark = on_mark or (lambda _: None)
        self._in_reply = False  # a chunk of this reply was sent: the next ones continue it

    def start_reply(self) -> None:
        """The next chunk opens a reply: services/tts serves it before later chunks of others."""
        self._in_reply = False

    @property
    def model(self) -> str:
        return "kokoro-82m"

    @property
    def provider(self) -> str:
        return "halfsec"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _KokoroChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    async def aclose(self) -> None:
        await self._client.aclose()


class _KokoroChunkedStream(tts.ChunkedStream):
    _tts: HalfsecTTS

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=SAMPLE_RATE,
            num_channels=1,
            mime_type="audio/pcm",
            frame_size_ms=_FRAME_MS,  # hand audio on in 20 ms frames, not LiveKit's default 200 ms
        )
        if not self.input_text.strip():  # nothing to say: no request, no audio
            output_emitter.flush()
            return
        t = self._tts
        t._mark("tts_request")
        continues, t._in_reply = t._in_reply, True
        heard = False
        try:
            async for rate, pcm in t._client.stream(self.input_text, voice=t.voice, speed=t.speed, continues=continues):
                if rate != SAMPLE_RATE:
                    raise TtsError(f"service sent {rate} Hz audio, expected {SAMPLE_RATE}")
                if not heard:
                    t._mark("tts_first_audio")
                output_emitter.push(pcm)
                heard = True
        except (TimeoutError, TtsError, aiohttp.ClientError) as exc:
            raise APIConnectionError(f"TTS service: {exc}") from exc
        if not heard:
            # The service found nothing speakable (an emoji, a markdown rule). LiveKit counts a
            # chunk of text that produced no audio as a failed synthesis and retries it, so it
            # gets one frame of silence instead.
            output_emitter.push(bytes(2 * SAMPLE_RATE * _FRAME_MS // 1000))
        output_emitter.flush()


class ReplyStreamAdapter(tts.StreamAdapter):
    """LiveKit's StreamAdapter (the reply cut into chunks, each sent to `synthesize`), opening
    one stream per reply: it tells the plugin where a reply starts."""

    def __init__(self, *, tts: HalfsecTTS, **kwargs: Any) -> None:
        super().__init__(tts=tts, **kwargs)
        self._halfsec = tts

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> tts.StreamAdapterWrapper:
        self._halfsec.start_reply()
        return super().stream(conn_options=conn_options)
