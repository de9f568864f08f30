"""Client of the hold routes halfsec's vLLM plugin adds (services/llm/vllm_plugin): vLLM stops
decoding until a reply's first audio is made on the cores it shares with Kokoro.

A hold never delays or fails what it is held for: it is sent beside the work, not before it, and
an LLM server that is away or without the plugin only means no hold (a 404 says so once, then
the client stops asking).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

import aiohttp

from ..http import ServiceClient

log = logging.getLogger("halfsec.llm")
HOLD_PATH, RELEASE_PATH = "/halfsec/hold", "/halfsec/release"  # under the API's /v1, as the plugin's
# Names the caller on its generation requests, as its holds do: the plugin does not pause vLLM
# while another caller's reply is still on its way to its first audio.
CALLER_HEADER = "x-halfsec-caller"


class LlmHold(ServiceClient):
    def __init__(self, api_url: str, *, lease_s: float, caller: str | None = None, token: str | None = None) -> None:
        """`api_url`: the LLM's OpenAI API, with its /v1. `lease_s`: how long a hold lasts at
        most if its release never comes (the holder died). `caller`: the name its generation
        requests carry in CALLER_HEADER (None: a hold that yields to no reply of its own)."""
        super().__init__(api_url, aiohttp.ClientTimeout(total=2.0, sock_connect=0.5), token=token)
        self.lease_s, self.caller = lease_s, caller
        self._supported = True
        self.held = 0  # holds the server took, for tests and figures

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[None]:
        """vLLM paused while the block runs (or until the lease ends). The block starts at once;
        the hold's request (vLLM finishes its current step first, ~30-70 ms here) goes beside it."""
        if not self._supported:
            yield
            return
        key = uuid.uuid4().hex[:16]
        body: dict[str, object] = {"id": key, "lease_s": self.lease_s}
        if self.caller is not None:
            body["caller"] = self.caller
        taken = asyncio.create_task(self._post(HOLD_PATH, body))
        try:
            yield
        finally:
            # shielded: a cancelled block (a barge-in) must still release what it held
            await asyncio.shield(self._release(taken, key))

    async def _release(self, taken: asyncio.Task[bool], key: str) -> None:
        if await taken:
            await self._post(RELEASE_PATH, {"id": key})

    async def _post(self, path: str, body: dict[str, object]) -> bool:
        try:
            async with self._http().post(f"{self.base_url}{path}", json=body) as resp:
                if resp.status == 404:
                    log.warning("the LLM server has no %s (halfsec's vLLM plugin): not holding it", path)
                    self._supported = False
                    return False
                if resp.status != 200:
                    log.warning("LLM hold %s: %s %s", path, resp.status, (await resp.text())[:200])
                    return False
                self.held += path == HOLD_PATH
                return True
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.debug("LLM hold %s failed: %s", path, exc)
            return False
