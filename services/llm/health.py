"""Client of the LLM server's /health: asked when a reply's first token is late, to tell a slow
server from a hung one."""

from __future__ import annotations

import aiohttp

from ..http import ServiceClient


class LlmHealth(ServiceClient):
    def __init__(self, server_url: str, *, token: str | None = None) -> None:
        """`server_url`: the server's root (vLLM serves /health there, beside /v1)."""
        super().__init__(server_url, aiohttp.ClientTimeout(total=2.0, sock_connect=0.5), token=token)

    async def healthy(self, timeout_s: float) -> bool:
        """Whether the server says it is healthy (200) within `timeout_s`. A hung vLLM says
        nothing; a dead engine behind a live API server answers 503; a server with no /health
        (404) cannot say, so it counts as not healthy: its late reply gets the fallback."""
        return await self.health_status(timeout_s) == 200
