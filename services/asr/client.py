"""Clients of services/asr: `AsrClient.transcribe` (one utterance) and `AsrClient.stream` (a call)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp

from ..http import ServiceClient, error_text
from .protocol import (
    SAMPLE_RATE,
    STREAM_EVENT,
    STREAM_PARAMS,
    STREAM_PATH,
    TRANSCRIBE_PATH,
    StreamEvent,
    Transcript,
)


class AsrError(RuntimeError):
    pass


class AsrStream:
    """One open stream: `send` PCM16 16 kHz mono, iterate the events, `end` when done."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws

    async def send(self, pcm16: bytes) -> None:
        await self._ws.send_bytes(pcm16)

    async def end(self) -> None:
        """No more audio: the service finishes the utterance, sends `closed`, and closes."""
        if not self._ws.closed:
            await self._ws.send_str(json.dumps({"type": "end"}))

    async def events(self) -> AsyncIterator[StreamEvent]:
        async for msg in self._ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                yield STREAM_EVENT.validate_json(msg.data)
            elif msg.type == aiohttp.WSMsgType.ERROR:
                raise AsrError(f"ASR stream failed: {self._ws.exception()}")
        if self._ws.close_code not in (None, 1000):
            raise AsrError(f"ASR stream closed with code {self._ws.close_code}")

    async def aclose(self) -> None:
        await self._ws.close()


class AsrClient(ServiceClient):
    def __init__(self, base_url: str, *, timeout_s: float = 10.0, token: str | None = None) -> None:
        super().__init__(base_url, aiohttp.ClientTimeout(total=timeout_s), token=token)
        self._connect_timeout = timeout_s

    async def transcribe(self, pcm16: bytes, sample_rate: int = SAMPLE_RATE) -> Transcript:
        url = f"{self.base_url}{TRANSCRIBE_PATH}"
        async with self._http().post(url, data=pcm16, params={"sample_rate": str(sample_rate)}) as resp:
            if resp.status != 200:
                raise AsrError(f"ASR service {resp.status}: {await error_text(resp)}")
            return Transcript.model_validate(await resp.json())

    async def stream(self, **params: str) -> AsrStream:
        """Open a stream. `params` override the protocol's query (tests send bad ones)."""
        query = {**STREAM_PARAMS, **params}
        try:
            ws = await self._http().ws_connect(
                f"{self.base_url}{STREAM_PATH}",
                params=query,
                timeout=aiohttp.ClientWSTimeout(ws_close=self._connect_timeout),
                heartbeat=20.0,
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise AsrError(f"ASR service refused the stream ({exc.status}): {exc.message}") from exc
        return AsrStream(ws)
