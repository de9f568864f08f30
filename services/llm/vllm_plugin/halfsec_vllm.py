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
    """Leases on pausing the engine: paused while any lease is live. Pause and resume calls are
    serialised, so the engine's state always follows the last decision."""

    def __init__(self, pause: Callable[[], Awaitable[Any]], resume: Callable[[], Awaitable[Any]]) -> None:
        self._pause, self._resume = pause, resume
        self._leases: dict[str, float] = {}  # id -> deadline (loop time)
        self._paused = False
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._expiring: set[asyncio.Task[None]] = set()

    @property
    def live(self) -> int:
        return len(self._leases)

    async def hold(self, key: str, lease_s: float) -> None:
        self._leases[key] = asyncio.get_running_loop().time() + min(lease_s, MAX_LEASE_S)
        await self._settle()

    async def release(self, key: str) -> None:
        self._leases.pop(key, None)
        await self._settle()

    async def end_all(self) -> None:
        """Another caller's request came: its first token must not wait behind a hold (the agent
        counts a reply with no first token in 1.5 s as failed; two calls at once, a hold plus a
        loaded prefill went over that in the soak test)."""
        if self._leases:
            self._leases.clear()
            await self._settle()

    async def _settle(self) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            now = loop.time()
            self._leases = {k: t for k, t in self._leases.items() if t > now}
            if self._leases and not self._paused:
                await self._pause()
                self._paused = True
            elif not self._leases and self._paused:
                await self._resume()
                self._paused = False
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._leases:
                self._timer = loop.call_at(min(self._leases.values()), self._expire)

    def _expire(self) -> None:
        task = asyncio.get_running_loop().create_task(self._settle())
        self._expiring.add(task)
        task.add_done_callback(self._expiring.discard)


_GENERATE_PATHS = ("/v1/chat/completions", "/v1/completions")


class _NewRequestsEndHolds:
    """A plain ASGI middleware (streaming and client disconnects pass through untouched): a new
    generation request ends every hold before vLLM takes it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST" and scope["path"] in _GENERATE_PATHS:
            holds = getattr(scope["app"].state, "halfsec_holds", None)
            if holds is not None:
                await holds.end_all()
        await self.app(scope, receive, send)


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
                return {done: body.id, "live": holds.live}

        route(HOLD_PATH, lambda holds, body: holds.hold(body.id, body.lease_s), "held")
        route(RELEASE_PATH, lambda holds, body: holds.release(body.id), "released")
        app.include_router(router)
        app.add_middleware(_NewRequestsEndHolds)

    async def init_state(self, engine_client: Any, state: Any, args: Any) -> None:
        if engine_client is None:  # vLLM's render-only server has no engine to pause
            return
        state.halfsec_holds = Holds(
            # keep: the requests stay scheduled and go on where they stopped; their KV stays too
            lambda: engine_client.pause_generation(mode="keep", clear_cache=False),
            engine_client.resume_generation,
        )
