"""Client of services/asr, used by the agent's STT plugin and by tests."""

from __future__ import annotations

import aiohttp

from ..http import error_text
from .protocol import SAMPLE_RATE, TRANSCRIBE_PATH, Transcript


class AsrError(RuntimeError):
    pass


class AsrClient:
    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        # One keep-alive connection pool per client: a turn must not pay for a TCP handshake.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def transcribe(self, pcm16: bytes, sample_rate: int = SAMPLE_RATE) -> Transcript:
        url = f"{self.base_url}{TRANSCRIBE_PATH}"
        async with self._http().post(
            url, data=pcm16, params={"sample_rate": str(sample_rate)}
        ) as resp:
            if resp.status != 200:
                raise AsrError(f"ASR service {resp.status}: {await error_text(resp)}")
            return Transcript.model_validate(await resp.json())

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
