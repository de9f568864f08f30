"""`halfsec up start` (or `dev`, the first argument) with calls a test holds open: our server
(make_server: prewarm, load, admission, agent name, drain timeout) run by `serve` through
LiveKit's runner, in a process of its own so a test can SIGTERM it. Only the entrypoint differs:
a room cannot be joined here, so each job, in its own LiveKit job process, is a call that lasts
until the test hangs it up.

As our entrypoint does, it returns once the call is set up, and the call lives on until the job
shuts down. It writes HOLD/<job id>.started (the job's metadata); the caller hangs up when
HOLD/<job id>.release appears (`ctx.shutdown("call over")`); however the call ended, its shutdown
callback writes the reason to HOLD/<job id>.ended.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from livekit.agents import JobContext

HOLD_ENV = "HALFSEC_TEST_HOLD_DIR"
HUNG_UP = "call over"


async def held_call(ctx: JobContext) -> None:
    hold = Path(os.environ[HOLD_ENV])
    job = ctx.job.id
    assert ctx.proc.userdata["settings"] is not None  # prewarm ran in this process

    async def ended(reason: str) -> None:
        (hold / f"{job}.ended").write_text(reason)

    async def caller() -> None:
        while not (hold / f"{job}.release").exists():
            await asyncio.sleep(0.05)
        ctx.shutdown(HUNG_UP)

    ctx.add_shutdown_callback(ended)
    ctx.proc.userdata["caller"] = asyncio.create_task(caller())
    (hold / f"{job}.started").write_text(ctx.job.metadata)


@asynccontextmanager
async def services_stand_in() -> AsyncIterator[None]:
    """What `halfsec up` runs beside the worker (the model services, the kiosk), as files: when it
    came up, and when it went down."""
    hold = Path(os.environ[HOLD_ENV])
    (hold / "beside.up").write_text("")
    try:
        yield
    finally:
        (hold / "beside.down").write_text("")


if __name__ == "__main__":
    from agent.worker import PROFILE_ENV, check_env, make_server, serve
    from configs import load_settings

    check_env()
    os.environ[PROFILE_ENV] = "cpu"
    mode = sys.argv[1] if len(sys.argv) > 1 else "start"
    server = make_server(load_settings("cpu"), entrypoint=held_call, beside=[services_stand_in], port=0)
    serve(server, mode)  # type: ignore[arg-type]
