"""vLLM plugins for a CPU box that vLLM shares with Kokoro (the cpu profile).

On two cores, Kokoro's first audio is the largest stage of a turn, and it halves whenever anything
else runs on the other core (these vCPUs slow each other: a busy loop on one makes Kokoro ~2x
slower on the other, even at SCHED_IDLE). Two things of vLLM's ran there:

- `quiet_wait` (general plugin, in every vLLM process): vLLM's worker busy-waits 1 s (hardcoded
  `SpinCondition.busy_loop_s`) after every message from the engine, so each request left a core
  at 100 % for a second after its last token, while Kokoro spoke the reply. With
  VLLM_SHM_BROADCAST_BUSY_LOOP_S set (the name vllm-project/vllm#52814 proposes for the same
  knob), the worker waits that long and then sleeps on its socket.
- `HoldEndpoints` (endpoint plugin): POST /v1/halfsec/hold {"id", "lease_s"} pauses the engine's
  scheduler (vLLM's own `pause_generation(mode="keep")`: requests stay, decoding stops) until
  every hold is released (POST /v1/halfsec/release {"id"}) or its lease runs out, so a holder that
  dies cannot leave vLLM paused. Under /v1, so vLLM's API key guards it like the rest of the API.
  A hold names its caller ({"caller"}), as the caller's generation requests do (the
  x-halfsec-caller header): while another caller's reply has not reached its own first audio,
  the engine is not paused, so a second call's first sentence is not decoded behind the first
  call's synthesis.
"""

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("halfsec.vllm")

BUSY_LOOP_ENV = "VLLM_SHM_BROADCAST_BUSY_LOOP_S"
HOLD_PATH = "/v1/halfsec/hold"
RELEASE_PATH = "/v1/halfsec/release"
CALLER_HEADER = b"x-halfsec-caller"  # as services/llm/hold.py sends it
MAX_LEASE_S = 5.0  # a hold is a first chunk's synthesis: seconds at most


def quiet_wait() -> None:
    value = os.environ.get(BUSY_LOOP_ENV)
    if not value:
        return
    from vllm.distributed.device_communicators import shm_broadcast

    init = shm_broadcast.SpinCondition.__init__
    if init.__defaults__ != (1,):  # vLLM changed it (or made it configurable): leave it alone
        log.warning("%s: SpinCondition's defaults are %r, not (1,): left as they are", BUSY_LOOP_ENV, init.__defaults__)
        return
    init.__defaults__ = (float(value),)


class Holds:
    """Leases on pausing the engine: paused while any lease is live and no caller's reply is still
    opening. Pause and resume calls are serialised, so the engine's state always follows the last
    decision."""

    def __init__(self, pause: Callable[[], Awaitable[Any]], resume: Callable[[], Awaitable[Any]]) -> None:
        self._pause, self._resume = pause, resume
        self._leases: dict[str, float] = {}  # id -> deadline (loop time)
        # A caller's generation request in flight, until that caller holds: until then its reply
        # has no first audio, and pausing the engine would delay it.
        self._opening: dict[object, str] = {}  # request -> caller
        self._paused = False
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._settling: set[asyncio.Task[None]] = set()

    @property
    def live(self) -> int:
        return len(self._leases)

    @property
    def opening(self) -> int:
        return len(self._opening)

    async def hold(self, key: str, lease_s: float, caller: str | None = None) -> None:
        self._leases[key] = asyncio.get_running_loop().time() + min(lease_s, MAX_LEASE_S)
        if caller is not None:  # its reply is at its first audio: its requests wait no longer on it
            self._opening = {r: c for r, c in self._opening.items() if c != caller}
        await self._settle()

    async def release(self, key: str) -> None:
        self._leases.pop(key, None)
        await self._settle()

    async def opened(self, request: object, caller: str | None) -> None:
        """A generation request came; the engine runs before it goes in. Of a named caller, it
        keeps the engine running until that caller holds (or the request ends). Of no named
        caller, nothing will say when its first audio is out: it ends the holds live now (its
        first token does not wait on them; the agent fails a reply with none in 1.5 s) and is not
        waited on after."""
        if caller is None:
            self._leases.clear()
        else:
            self._opening[request] = caller
        await self._settle()

    def closed(self, request: object) -> None:
        """The request ended (answered, failed or abandoned). Not awaited: it runs from the
        request's own teardown, which may be being cancelled."""
        if self._opening.pop(request, None) is not None:
            self._settle_soon()

    async def _settle(self) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            now = loop.time()
            self._leases = {k: t for k, t in self._leases.items() if t > now}
            pause = bool(self._leases) and not self._opening
            if pause and not self._paused:
                await self._pause()
                self._paused = True
            elif not pause and self._paused:
                await self._resume()
                self._paused = False
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._leases:
                self._timer = loop.call_at(min(self._leases.values()), self._settle_soon)

    def _settle_soon(self) -> None:
        task = asyncio.get_running_loop().create_task(self._settle())
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)


_GENERATE_PATHS = ("/v1/chat/completions", "/v1/completions")


class _GenerationRequestsOpen:
    """A plain ASGI middleware (streaming and client disconnects pass through untouched): tells
    the holds when a generation request comes and when it ends."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        holds = None
        if scope["type"] == "http" and scope.get("method") == "POST" and scope["path"] in _GENERATE_PATHS:
            holds = getattr(scope["app"].state, "halfsec_holds", None)
        if holds is None:
            await self.app(scope, receive, send)
            return
        request = object()
        caller = dict(scope["headers"]).get(CALLER_HEADER)
        await holds.opened(request, None if caller is None else caller.decode("latin-1"))
        try:
            await self.app(scope, receive, send)
        finally:
            holds.closed(request)


class HoldEndpoints:
    """The hold routes on vLLM's OpenAI server (a `vllm.endpoint_plugins` entry point)."""

    name = "halfsec"
    required_tasks = ("generate",)

    def attach_router(self, app: Any) -> None:
        from fastapi import APIRouter, Request
        from fastapi.responses import JSONResponse
        from pydantic import BaseModel, Field, ValidationError

        class HoldRequest(BaseModel):  # a release names its hold alone
            id: str = Field(min_length=1, max_length=64)
            lease_s: float = Field(default=1.0, gt=0, le=MAX_LEASE_S)
            caller: str | None = Field(default=None, min_length=1, max_length=64)

        router = APIRouter()

        def route(path: str, act: Callable[[Holds, HoldRequest], Awaitable[None]], done: str) -> None:
            @router.post(path)
            async def handle(request: Request) -> Any:
                try:
                    body = HoldRequest.model_validate_json(await request.body())
                except ValidationError as exc:
                    err = exc.errors()[0]
                    where = ".".join(map(str, err["loc"])) or "body"
                    return JSONResponse({"error": f"{where}: {err['msg']}"}, status_code=400)
                holds: Holds = request.app.state.halfsec_holds
                await act(holds, body)
                return {done: body.id, "live": holds.live, "opening": holds.opening}

        route(HOLD_PATH, lambda holds, body: holds.hold(body.id, body.lease_s, body.caller), "held")
        route(RELEASE_PATH, lambda holds, body: holds.release(body.id), "released")
        app.include_router(router)
        app.add_middleware(_GenerationRequestsOpen)

    async def init_state(self, engine_client: Any, state: Any, args: Any) -> None:
        if engine_client is None:  # vLLM's render-only server has no engine to pause
            return
        state.halfsec_holds = Holds(
            # keep: the requests stay scheduled and go on where they stopped; their KV stays too
            lambda: engine_client.pause_generation(mode="keep", clear_cache=False),
            engine_client.resume_generation,
        )
