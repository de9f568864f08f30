"""Client of services/tts, used by the agent's TTS plugin and by tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from ..http import ServiceClient, error_text
from .protocol import HEALTH_PATH, SAMPLE_RATE_HEADER, SYNTHESIZE_PATH, VOICES_PATH, SynthesizeRequest


class TtsError(RuntimeError):
    pass


class TtsClient(ServiceClient):
    def __init__(self, base_url: str, *, timeout_s: float = 30.0, token: str | None = None) -> None:
        super().__init__(base_url, aiohttp.ClientTimeout(total=timeout_s, sock_connect=2.0), token=token)

    async def stream(
        self,
        text: str,
        *,
        voice: str | None = None,
        speed: float | None = None,
        continues: bool = False,
        keep: bool = False,
    ) -> AsyncIterator[tuple[int, bytes]]:
        """Yield (sample_rate, pcm16 bytes) as the service produces audio; nothing at all when the
        text has nothing speakable. Closing the iterator early closes the connection: the
        service stops the piece it is synthesising and drops the rest."""
        body = SynthesizeRequest(text=text, voice=voice, speed=speed, continues=continues, keep=keep).model_dump_json()
        async with self._http().post(
            f"{self.base_url}{SYNTHESIZE_PATH}",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as resp:
            if resp.status == 204:
                return
            if resp.status != 200:
                raise TtsError(f"TTS service {resp.status}: {await error_text(resp)}")
            rate = int(resp.headers[SAMPLE_RATE_HEADER])
            carry = b""
            async for chunk in resp.content.iter_any():
                # keep whole 16-bit samples: HTTP chunks may split one in half
                data, carry = carry + chunk, b""
                if len(data) % 2:
                    data, carry = data[:-1], data[-1:]
                if data:
                    yield rate, data

    async def health(self) -> dict[str, Any]:
        async with self._http().get(f"{self.base_url}{HEALTH_PATH}") as resp:
            return dict(await resp.json())

    async def voices(self) -> list[str]:
        async with self._http().get(f"{self.base_url}{VOICES_PATH}") as resp:
            return list((await resp.json())["voices"])
