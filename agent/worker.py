"""`halfsec up`: the LiveKit worker. Each call (room job) gets its own process and session; the
models stay in the services, so a job process holds only thin clients and the Silero VAD.

Each job writes its turns to RUNS/rooms/<room>-<id>/turns.jsonl. The worker's own process follows
them and serves the latency dashboard and Prometheus' /metrics (`latency.dashboard_port`), so one
scrape covers every call, whichever job process it ran in.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from pathlib import Path

from livekit.agents import AgentServer, JobContext, JobProcess, JobRequest

from configs import Settings, load_settings
from latency import Budget, TurnLog
from latency.dashboard import running

from .access import dashboard_access
from .admission import Admission, call_capacity
from .session import HalfsecAgent, build_session, build_vad
from .tracing import CallTracer

log = logging.getLogger("halfsec.worker")

REQUIRED_ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
PROFILE_ENV = "HALFSEC_PROFILE"  # how the profile reaches job processes
RUNS_ENV = "HALFSEC_RUNS_DIR"


class WorkerConfigError(RuntimeError):
    pass


def check_env(env: dict[str, str] | os._Environ[str] = os.environ) -> None:
    missing = [k for k in REQUIRED_ENV if not env.get(k)]
    if missing:
        raise WorkerConfigError(
            f"{', '.join(missing)} not set: `halfsec up` joins rooms on a LiveKit server "
            "(e.g. LIVEKIT_URL=wss://your-server LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=...); "
            "without one, run `halfsec demo`"
        )


def prewarm(proc: JobProcess) -> None:
    # Settings and Silero's VAD (shared by the process's calls), before a caller waits on them;
    # the other models live in the services, never in a forked job process.
    settings = load_settings(os.environ.get(PROFILE_ENV, "cpu"))
    proc.userdata["settings"] = settings
    build_vad(settings)


async def entrypoint(ctx: JobContext) -> None:
    settings = ctx.proc.userdata["settings"]  # set by prewarm, which LiveKit runs first
    runs = rooms_dir()
    turn_log = TurnLog(runs / f"{ctx.room.name}-{uuid.uuid4().hex[:6]}" / "turns.jsonl")
    tracer = CallTracer(
        ctx.room.name,
        turn_log.write,
        budget=Budget(*settings.latency.budget_values()),
        end_of_turn_by=settings.turn.detection,
        vad_silence_s=settings.vad.min_silence_s,
    )
    session, agent = build_session(settings, tracer)
    ctx.add_shutdown_callback(lambda: _close(tracer, turn_log, agent))
    await session.start(agent=agent, room=ctx.room)
    await ctx.connect()


async def _close(tracer: CallTracer, turn_log: TurnLog, agent: HalfsecAgent) -> None:
    tracer.close()
    turn_log.close()
    await agent.aclose_clients()


def rooms_dir() -> Path:
    return Path(os.environ.get(RUNS_ENV, "runs")) / "rooms"


def watch_rooms(settings: Settings):  # -> an async context manager serving the dashboard
    """The dashboard and /metrics over every room's turns, while the worker runs."""
    rooms = rooms_dir()
    rooms.mkdir(parents=True, exist_ok=True)
    o = settings.latency
    access = dashboard_access(settings, o.dashboard_host)
    return running(rooms, Budget(*o.budget_values()), host=o.dashboard_host, port=o.dashboard_port, **access)


async def _serve(settings: Settings) -> None:
    async with watch_rooms(settings):
        await make_server(settings).run()


def make_server(settings: Settings) -> AgentServer:
    """LiveKit's worker, reporting its load as calls in progress over `call_capacity`, so the
    LiveKit server stops dispatching to it when it is full."""
    admission = Admission(call_capacity(settings))
    server = AgentServer(
        setup_fnc=prewarm,
        load_fnc=lambda server: admission.load(len(server.active_jobs)),
        load_threshold=admission.load_threshold,
    )
    server.rtc_session(entrypoint, on_request=lambda req: admit(admission, server, req))
    return server


async def admit(admission: Admission, server: AgentServer, req: JobRequest) -> None:
    """Accept the job, or refuse it when full: the load LiveKit saw may be a moment old."""
    if (why := admission.refusal(len(server.active_jobs))) is not None:
        log.warning("refusing the call in room %s: %s", req.room.name, why)
        await req.reject(terminate=False)  # not terminated: LiveKit offers it to another worker
        return
    await req.accept()


def run_worker(profile: str) -> None:
    check_env()
    settings = load_settings(profile)  # a bad profile fails here, not in every job process
    os.environ[PROFILE_ENV] = profile
    asyncio.run(_serve(settings))
