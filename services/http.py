"""What the HTTP services and their clients share: the bearer token both ways, JSON errors both
ways, and a run loop that stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import os
import signal
from collections.abc import Callable

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from configs import Settings, default_profile, load_settings
from configs.settings import ServiceAddress

# Left open with a token set: orchestrators' and the supervisor's health checks carry no
# credentials, and a health answer holds counts and the model's name, nothing of a call.
OPEN_PATH = "/health"


def auth_headers(token: str | None) -> dict[str, str]:
    """What a client sends with every request (nothing without a token)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def has_token(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # compare_digest: the time taken says nothing about how much of the token was right
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


def bearer_auth(token: str) -> Middleware:
    """401 for any request without `Authorization: Bearer <token>`, but GET /health. A WebSocket
    handshake is a GET like any other: it is refused before the handler upgrades it."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (request.method == "GET" and request.path == OPEN_PATH) or has_token(request, token):
            return await handler(request)
        return web.json_response(
            {"error": "missing or wrong bearer token (Authorization: Bearer $HALFSEC_SERVICE_TOKEN)"},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    return middleware


def auth_middlewares(settings: Settings) -> list[Middleware]:
    """A service app's middlewares: the token check when a token is set, else none (loopback
    only, which the settings enforce)."""
    token = settings.token()
    return [bearer_auth(token)] if token else []


class ServiceClient:
    """A client of one of our services: one keep-alive connection pool, opened on first use (a
    turn must not pay for a TCP handshake), closed by `aclose`. With a `token`, every request
    carries it."""

    def __init__(self, base_url: str, timeout: aiohttp.ClientTimeout, *, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._headers = auth_headers(token)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # session-wide headers reach ws_connect's handshake too
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        return self._session

    async def health_status(self, timeout_s: float) -> int | None:
        """The status of GET /health within `timeout_s`; None if none came (a hung service
        accepts the connection and says nothing)."""
        try:
            async with asyncio.timeout(timeout_s), self._http().get(f"{self.base_url}/health") as resp:
                return resp.status
        except (TimeoutError, aiohttp.ClientError):
            return None

    async def answers(self, timeout_s: float) -> bool:
        """Whether the service answers GET /health within `timeout_s` (any answer but a 5xx)."""
        status = await self.health_status(timeout_s)
        return status is not None and status < 500

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
    parser.add_argument("--profile", default=default_profile())
    args = parser.parse_args()
    # HALFSEC_LOG_LEVEL=DEBUG shows each stream's events (services/asr) and each synthesis step
    # (services/tts) when chasing a bad turn.
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
