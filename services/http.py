"""What the HTTP services and their clients share: JSON errors both ways, and a run loop that
stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
from collections.abc import Callable

import aiohttp
from aiohttp import web

from configs import Settings, load_settings
from configs.settings import ServiceAddress


class ServiceClient:
    """A client of one of our services: one keep-alive connection pool, opened on first use (a
    turn must not pay for a TCP handshake), closed by `aclose`."""

    def __init__(self, base_url: str, timeout: aiohttp.ClientTimeout) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def error_text(resp: aiohttp.ClientResponse) -> str:
    """A failed response's message: our JSON `error`, or whatever text aiohttp itself sent
    (e.g. its plain-text 413 for an oversized body)."""
    body = await resp.text(errors="replace")
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.strip()[:200] or resp.reason or "no message"


async def serve(app: web.Application, host: str, port: int, *, handler_cancellation: bool = False) -> None:
    """Serve `app` until SIGTERM or SIGINT, then finish in-flight requests and return. With
    `handler_cancellation`, a client that disconnects cancels its request's handler (aiohttp's
    default is to let it run on until it next writes)."""
    runner = web.AppRunner(app, handle_signals=False, handler_cancellation=handler_cancellation)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    logging.getLogger("halfsec").info("listening on http://%s:%d", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def service_main(
    name: str,
    description: str,
    build: Callable[[Settings], tuple[web.Application, ServiceAddress]],
    *,
    handler_cancellation: bool = False,
) -> None:
    """The `python -m services.X.server --profile P` entry point every HTTP service shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--profile", default="cpu")
    args = parser.parse_args()
    # HALFSEC_LOG_LEVEL=DEBUG shows each stream's events (services/asr) when chasing a bad turn.
    level = os.environ.get("HALFSEC_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level, format=f"%(asctime)s.%(msecs)03d {name} %(levelname)s %(message)s", datefmt="%H:%M:%S"
    )
    app, address = build(load_settings(args.profile))  # loads the model: slow, before we listen
    try:
        asyncio.run(serve(app, address.host, address.port, handler_cancellation=handler_cancellation))
    except OSError as exc:  # the port is taken or the address is not ours: one line, not a traceback
        logging.getLogger("halfsec").error("cannot listen on %s:%d: %s", address.host, address.port, exc.strerror)
        raise SystemExit(1) from None
