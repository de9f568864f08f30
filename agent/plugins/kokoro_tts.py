"""TTS plugin: text goes to services/tts, PCM streams back into LiveKit's audio emitter.

Not streaming text-in (yet): LiveKit's StreamAdapter cuts the LLM's text with the tokenizer it is
given, ours (chunking.py: the reply's first sentence at its clauses, later sentences whole), and
calls `synthesize` per chunk; audio of each comes back as it is produced.

With `fallback` (the prerendered audio of `tts.fallback_text`, agent/fallback.py) the plugin decides
when the caller hears it instead of the reply: when /health does not answer as the reply starts
(`fallback_if_down`, played by the agent's tts_node), and when a chunk fails or gets no first audio
within `first_audio_timeout_s` (once per reply; its later chunks are skipped). Either way no error
reaches LiveKit, which ends a session after three unrecoverable TTS errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from livekit import rtc
from livekit.agents import APIConnectionError, APIConnectOptions, tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

from services.llm.hold import LlmHold
from services.tts.client import TtsClient, TtsError
from services.tts.protocol import SAMPLE_RATE

log = logging.getLogger("halfsec.agent")

Mark = Callable[[str], None]
Fallback = Callable[[], list[rtc.AudioFrame] | None]  # the audio, or None while it is not ready
_FRAME_MS = 20
_PROBE_S = 0.5  # how long /health gets to show a silent service is alive


class HalfsecTTS(tts.TTS):
    def __init__(
        self,
        client: TtsClient,
        *,
        voice: str | None = None,
        speed: float | None = None,
        on_mark: Mark | None = None,
        fallback: Fallback | None = None,
        first_audio_timeout_s: float | None = None,
        hold: LlmHold | None = None,
        keep: bool = False,
    ) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=SAMPLE_RATE, num_channels=1)
        self._client = client
        self.voice, self.speed = voice, speed
        self._mark = on_mark or (lambda _: None)
        self._fallback = fallback
        self._first_audio_timeout_s = first_audio_timeout_s if fallback is not None else None
        self._hold = hold  # vLLM stops decoding until a reply's first audio is made
        self._keep = keep  # a phrase said in every call: the service keeps its audio
        self._in_reply = False  # a chunk of this reply was sent: the next ones continue it
        self._fell_back = False  # this reply's apology was played: its later chunks are dropped

    @property
    def service_url(self) -> str | None:
        """The TTS service's address (None for a test's fake client)."""
        return getattr(self._client, "base_url", None)

    def start_reply(self) -> None:
        """The next chunk opens a reply: services/tts serves it before later chunks of others."""
        self._in_reply = self._fell_back = False

    async def fallback_if_down(self) -> list[rtc.AudioFrame] | None:
        """Asked as a reply starts, before its first chunk (an LLM on a loaded CPU takes seconds to
        its first clause, too late to find the TTS down then): the prerendered apology if the
        service does not answer /health within `_PROBE_S` (down: at once; hung: then), else None."""
        frames = self._fallback() if self._fallback is not None else None
        if frames is None or await self._client.answers(_PROBE_S):
            return None
        log.warning("TTS service does not answer: playing the prerendered fallback")
        self._mark("fallback")
        return frames

    async def _watch_first_audio(self, deadline: asyncio.Timeout) -> None:
        """A hung service accepts the request and never answers; a busy one is only slow (a
        reply's first chunk waited 4.7 s behind the call's prerendered phrases here). So with
        no audio `_PROBE_S` before `first_audio_timeout_s`, ask /health: no answer by then ends
        the request (TimeoutError: the fallback); an answer lets it take its time."""
        limit = self._first_audio_timeout_s or 1.0
        await asyncio.sleep(max(limit - _PROBE_S, 0.0))
        if not await self._client.answers(min(_PROBE_S, limit)):
            deadline.reschedule(asyncio.get_running_loop().time())

    def _fall_back(self, exc: Exception, emitter: tts.AudioEmitter) -> bool:
        """A chunk's failure (the service went away mid-reply) becomes the prerendered apology,
        once per reply; its later chunks are skipped. False when there is no audio to play: the
        chunk raises as before."""
        frames = self._fallback() if self._fallback is not None else None
        if frames is None:
            return False
        if not self._fell_back:
            log.warning("TTS failed (%s): playing the prerendered fallback", exc)
            self._mark("fallback")
            self._fell_back = True
            for frame in frames:
                emitter.push(bytes(frame.data))
        return True

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
        if self._hold is not None:
            await self._hold.aclose()


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
        if t._fell_back:  # the service failed earlier in this reply: the apology stands for it all
            output_emitter.push(_silence())
            output_emitter.flush()
            return
        t._mark("tts_request")
        continues, t._in_reply = t._in_reply, True
        heard = False
        audio = t._client.stream(self.input_text, voice=t.voice, speed=t.speed, continues=continues, keep=t._keep)
        # vLLM is held until the reply's first audio, later audio is made beside it: Kokoro's first
        # audio takes twice as long while vLLM decodes on the other core (configs/cpu.yaml). Held
        # to the end of the first chunk instead, vLLM also waited through its second decoder
        # window, and another call's reply with it (docs/benchmarks.md, 2026-12-05 13:59).
        held = contextlib.AsyncExitStack()
        try:
            async with held, contextlib.aclosing(audio), asyncio.timeout(None) as deadline:
                if t._hold is not None and not continues:
                    await held.enter_async_context(t._hold.holding())
                watch = asyncio.create_task(t._watch_first_audio(deadline)) if t._fallback else None
                try:
                    async for rate, pcm in audio:
                        if rate != SAMPLE_RATE:
                            raise TtsError(f"service sent {rate} Hz audio, expected {SAMPLE_RATE}")
                        output_emitter.push(pcm)
                        if not heard:
                            t._mark("tts_first_audio")
                            heard = True
                            if watch is not None:
                                watch.cancel()
                            # released once the audio is on its way: the release is a request to
                            # vLLM, and awaited before the push it delayed every first frame by
                            # ~5 ms (transport P50 ~12 -> ~17 ms in `bench calls`, 5 Dec).
                            # Exiting the `async with` again is a no-op.
                            await held.aclose()
                finally:
                    if watch is not None:
                        await utils.aio.cancel_and_wait(watch)
        except (TimeoutError, TtsError, aiohttp.ClientError) as exc:
            if not t._fall_back(exc, output_emitter):
                raise APIConnectionError(f"TTS service: {exc}") from exc
            output_emitter.flush()
            return
        if not heard:
            # The service found nothing speakable (an emoji, a markdown rule). LiveKit counts a
            # chunk of text that produced no audio as a failed synthesis and retries it, so it
            # gets one frame of silence instead.
            output_emitter.push(_silence())
        output_emitter.flush()


def _silence() -> bytes:
    """One frame of silence: LiveKit counts a chunk that produced no audio as a failed synthesis."""
    return bytes(2 * SAMPLE_RATE * _FRAME_MS // 1000)


class ReplyStreamAdapter(tts.StreamAdapter):
    """LiveKit's StreamAdapter (the reply cut into chunks, each sent to `synthesize`), opening
    one stream per reply: it tells the plugin where a reply starts."""

    def __init__(self, *, tts: HalfsecTTS, **kwargs: Any) -> None:
        super().__init__(tts=tts, **kwargs)
        self._halfsec = tts

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> tts.StreamAdapterWrapper:
        self._halfsec.start_reply()
        return super().stream(conn_options=conn_options)
