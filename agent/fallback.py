"""The fallbacks' audio, synthesized ahead instead of when needed: the LLM's and the ASR's once per
call, at its start; the TTS's once per process, kept for its calls: made in LiveKit's prewarm, before
any caller waits (`keep_tts_fallback`), or, if the TTS could not make it then, at the first call's start.

The fallback must be heard within 2 s of the end of the turn. Its text is fixed, but sent to the TTS
like any reply it waits for Kokoro, and on a loaded CPU that alone was 3.4 s for "Sorry," (in
tests/test_llm_recovery.py, with a vLLM restarting on the same cores). Played from memory it
costs nothing; until the audio is ready (or if synthesizing it failed) the TTS speaks it as before.
The TTS's own fallback is the one said while the TTS cannot speak: it must exist before the outage,
so it is made while the TTS is up and outlives the call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from livekit import rtc
from livekit.agents import APIConnectOptions
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

from configs import Settings
from services.tts.client import TtsClient

from .plugins import HalfsecTTS

log = logging.getLogger("halfsec.agent")

# Prewarm waits this long for the TTS's apology: well within LiveKit's 10 s to initialize a job
# process, and a TTS that is down fails at once (a hung one is what this bounds).
PREWARM_TIMEOUT_S = 3.0

# Phrases kept for the process, by (TTS service, text, voice, speed): made by the first call
# that needs them (the service is part of the key: a test's fake TTS makes other audio).
_Key = tuple[str | None, str, str | None, float | None]
_KEPT: dict[_Key, list[rtc.AudioFrame]] = {}


def kept(text: str, tts_url: str) -> bool:
    """Whether the process already holds `text`'s audio from the TTS at `tts_url` (a test counts
    what a call synthesizes)."""
    return any(key[:2] == (tts_url.rstrip("/"), text) for key in _KEPT)


class PrerenderedPhrase:
    """`text`'s audio as the plugin hands it on (20 ms frames), made once in the background by
    `tts`: a plugin without milestones, on the call's own TTS client (the call closes that).
    `keep`: made once per process, not per call (the TTS's fallback)."""

    def __init__(
        self,
        text: str,
        tts: HalfsecTTS,
        *,
        keep: bool = False,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> None:
        self.text = text
        self._tts = tts
        self._conn_options = conn_options
        self._key = (tts.service_url, text, tts.voice, tts.speed) if keep else None
        self._frames: list[rtc.AudioFrame] | None = _KEPT.get(self._key) if self._key else None
        self._task: asyncio.Task[None] | None = None

    def start(self, after: list[PrerenderedPhrase] | None = None) -> None:
        """Synthesize in the background (once): the call goes on meanwhile. `after`: phrases
        to let finish first (on a loaded CPU each one more at once delays the others)."""
        if self._task is None and self._frames is None:
            waits = [p._task for p in after or () if p._task is not None]
            self._task = asyncio.create_task(self._render(waits), name="prerender-fallback")

    async def _render(self, after: list[asyncio.Task[None]]) -> None:
        await asyncio.gather(*after, return_exceptions=True)
        try:
            async with self._tts.synthesize(self.text, conn_options=self._conn_options) as stream:
                frames = [ev.frame async for ev in stream]
        except Exception as exc:  # noqa: BLE001 (any failure: the live TTS speaks it instead)
            log.warning("could not prerender the fallback (%s): the TTS will speak it when needed", exc)
            return
        self._frames = frames
        if self._key is not None:
            _KEPT[self._key] = frames

    async def render(self) -> bool:
        """Synthesize now and wait for it (once); whether the audio is ready."""
        if self._frames is None:
            await self._render([])
        return self._frames is not None

    @property
    def frames(self) -> list[rtc.AudioFrame] | None:
        """The phrase's audio, or None while it is not (or cannot be) ready."""
        return self._frames

    def replay(self) -> AsyncIterator[rtc.AudioFrame] | None:
        """The audio as `AgentSession.say(audio=...)` takes it, or None while it is not ready."""
        if self._frames is None:
            return None

        async def frames(ready: list[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
            for frame in ready:
                yield frame

        return frames(self._frames)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def keep_tts_fallback(settings: Settings, timeout_s: float = PREWARM_TIMEOUT_S) -> bool:
    """Make the TTS's apology (`tts.fallback_text`, in the profile's voice) for every call of this
    process, from synchronous code before its event loop runs (LiveKit's prewarm). A TTS that is
    down or slow now costs nothing: logged, and the first call makes it, as without prewarm.
    Whether the audio is kept."""

    async def make() -> bool:
        client = TtsClient(settings.tts.client_url, token=settings.token())
        speaker = HalfsecTTS(client, voice=settings.tts.voice, speed=settings.tts.speed, keep=True)
        # no retries: a TTS that is down now is asked again at the first call
        once = APIConnectOptions(max_retry=0, timeout=timeout_s)
        phrase = PrerenderedPhrase(settings.tts.fallback_text, speaker, keep=True, conn_options=once)
        try:
            async with asyncio.timeout(timeout_s):
                return await phrase.render()
        except TimeoutError:
            log.warning("the TTS made no fallback audio within %.1f s: the first call makes it", timeout_s)
            return False
        finally:
            await client.aclose()

    return asyncio.run(make())
