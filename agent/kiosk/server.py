"""The kiosk's web server: the page, its bundled script, and the token endpoint.

Routes:
  /               the page (static/index.html; livekit-client bundled into static/kiosk.js, no CDN)
  /static/        the page's files
  /dashboard/     the latency dashboard's static files (the waterfall drawing and the look it shares)
  POST /api/token {"name": optional display name} -> {url, token, room, identity}
                  400 bad body, 429 + Retry-After over the per-client rate, 503 LiveKit not configured
  /health         {"status": "ok"}
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from configs import Settings
from latency.dashboard.server import STATIC as DASHBOARD_STATIC

from .ratelimit import RateLimiter, retry_after
from .tokens import LiveKitCredentials, MissingCredentials, mint

log = logging.getLogger("halfsec.kiosk")

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 4096  # a display name fits many times over


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # shown to the agent and in LiveKit's room listing; the identity stays the server's choice
    name: str = Field(default="", max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")


class BadBody(ValueError):
    """A token request's body that is not `{}` or `{"name": "..."}`: the message says why, in one line."""


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _bad_body(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"bad request body: {where + ': ' if where else ''}{err['msg']}"


async def _token_request(request: web.Request) -> TokenRequest:
    """The body as a TokenRequest (empty means all defaults); BadBody otherwise."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BadBody(f"bad request body: larger than {MAX_BODY_BYTES} bytes") from None
    if not raw.strip():
        return TokenRequest()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadBody('bad request body: not JSON (send {} or {"name": "..."})') from None
    if not isinstance(data, dict):
        raise BadBody('bad request body: expected a JSON object like {"name": "..."}')
    try:
        return TokenRequest.model_validate(data)
    except ValidationError as exc:
        raise BadBody(_bad_body(exc)) from None


def make_app(settings: Settings, env: Mapping[str, str] = os.environ) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    limiter = RateLimiter(settings.kiosk.requests_per_minute)
    try:
        credentials: LiveKitCredentials | None = LiveKitCredentials.from_env(env)
        missing = ""
    except MissingCredentials as exc:
        credentials, missing = None, str(exc)

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def token(request: web.Request) -> web.Response:
        # the peer address, not X-Forwarded-For: a header any client can forge would void the limit
        wait_s = limiter.check(request.remote or "")
        if wait_s:
            return _error(429, "too many token requests: try again later", **{"Retry-After": retry_after(wait_s)})
        try:
            body = await _token_request(request)
        except BadBody as exc:
            return _error(400, str(exc))
        if credentials is None:
            return _error(503, missing)
        grant = mint(credentials, settings, name=body.name)
        log.info("token for %s in room %s (%s)", grant.identity, grant.room, request.remote)
        return web.json_response(grant.to_json(), headers={"Cache-Control": "no-store"})

    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    app.router.add_post("/api/token", token)
    app.router.add_static("/static/", STATIC)
    app.router.add_static("/dashboard/", DASHBOARD_STATIC)
    return app


@dataclass(frozen=True)
class Running:
    url: str  # where a browser on this machine opens the page
    livekit_url: str | None  # what the page connects to; None when tokens cannot be given out
    problem: str | None  # why not (LIVEKIT_* missing): the page says the same to the caller


@asynccontextmanager
async def running(
    settings: Settings, *, host: str | None = None, port: int | None = None, env: Mapping[str, str] = os.environ
) -> AsyncIterator[Running]:
    """The kiosk served beside other work on this event loop (`halfsec kiosk`, `halfsec up`)."""
    host = host or settings.kiosk.host
    port = port or settings.kiosk.port
    runner = web.AppRunner(make_app(settings, env), shutdown_timeout=2.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        shown = f"[{host}]" if ":" in host else host
        try:
            livekit_url, problem = LiveKitCredentials.from_env(env).url, None
        except MissingCredentials as exc:
            livekit_url, problem = None, str(exc)
        yield Running(url=f"http://{shown}:{port}/", livekit_url=livekit_url, problem=problem)
    finally:
        await runner.cleanup()
