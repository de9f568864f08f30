"""The LLM fallback's audio, synthesized once at the start of the call instead of when it is needed.

The fallback must be heard within 2 s of the end of the turn. Its text is fixed, but sent to the TTS
like any reply it waits for Kokoro, and on a loaded CPU that alone was 3.4 s for "Sorry," (in
tests/test_llm_recovery.py, with a vLLM restarting on the same cores). Played from memory it
costs nothing; until the audio is ready (or if synthesizing it failed) the TTS speaks it as before.
"""

from __future__ import annotations

import asyncio
import logging

from livekit import rtc
from livekit.agents.utils.audio import AudioByteStream

from services.tts.client import TtsClient, TtsError
from services.tts.protocol import SAMPLE_RATE

log = logging.getLogger("halfsec.agent")

FRAME_SAMPLES = SAMPLE_RATE // 50  # 20 ms frames, as the TTS plugin hands them on


class PrerenderedPhrase:
    def __init__(self, text: str, client: TtsClient, *, voice: str | None, speed: float | None) -> None:
        self.text = text
        self._client, self._voice, self._speed = client, voice, speed
        self._frames: list[rtc.AudioFrame] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Synthesize in the background (once): the call goes on meanwhile."""
        if self._task is None:
            self._task = asyncio.create_task(self._render(), name="prerender-fallback")

    async def _render(self) -> None:
        pcm = AudioByteStream(SAMPLE_RATE, 1, samples_per_channel=FRAME_SAMPLES)
        frames: list[rtc.AudioFrame] = []
        try:
            async for rate, data in self._client.stream(self.text, voice=self._voice, speed=self._speed):
                if rate != SAMPLE_RATE:
                    raise TtsError(f"service sent {rate} Hz audio, expected {SAMPLE_RATE}")
                frames += pcm.push(data)
        except Exception as exc:  # noqa: BLE001 (any failure: the live TTS speaks it instead)
            log.warning("could not prerender the fallback (%s): the TTS will speak it when needed", exc)
            return
        self._frames = frames + pcm.flush()

    @property
    def frames(self) -> list[rtc.AudioFrame] | None:
        """The phrase's audio, or None while it is not (or cannot be) ready."""
        return self._frames

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._client.aclose()
