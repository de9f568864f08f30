"""`halfsec up [start|dev]`: the LiveKit worker, run the way LiveKit runs its own agents. Each call
(room job) gets its own process and session; the models stay in the services, so a job process
holds only thin clients, the Silero VAD and the fallback audio, both made in its prewarm.

How it runs: through LiveKit's worker runner (`livekit.agents.cli.cli._run_worker`), the code
behind `cli.run_app`'s `start` and `dev` and behind `python -m livekit.agents start`. So SIGTERM
(or Ctrl-C) means what it means to any LiveKit agent: the worker tells the LiveKit server it is
full, takes no new job, lets the calls in progress finish, and exits once they have or after
`worker.drain_timeout_s` (a second signal exits at once); `dev` exits without draining, with
LiveKit's colored logs instead of JSON. Not `cli.run_app` itself: deprecated in 1.8.9, it parses
sys.argv with its own typer CLI, which `halfsec up` (argparse, `--profile`) cannot share. The
runner is private in livekit-agents, which is pinned (==1.8.9): a version that moves it fails
this import at start.

The worker registers as `worker.agent_name` (explicit dispatch; LiveKit's LIVEKIT_AGENT_NAME and
LIVEKIT_AGENT_NAME_OVERRIDE win over it) and reports its load as calls in progress over
`call_capacity`, so the LiveKit server skips a full worker. Each job's persona (prompt, voice,
greeting) comes from its metadata (agent/persona.py).

Each job writes its turns to RUNS/rooms/<room>-<id>/turns.jsonl and publishes each on the room's
data channel (agent/turn_feed.py). The worker's own process follows the files and serves the
latency dashboard and Prometheus' /metrics (`latency.dashboard_port`) while it runs, drain
included, so one scrape covers every call, whichever job process it ran in.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from livekit.agents import AgentServer, JobContext, JobProcess, JobRequest
from livekit.agents.cli import proto
from livekit.agents.cli.cli import _run_worker

from configs import Settings, load_settings
from latency import Budget, TurnLog, TurnRecord
from latency.dashboard import running
from services.supervisor import supervisor

from .access import dashboard_access
from .admission import Admission, call_capacity
from .fallback import keep_tts_fallback
from .kiosk import running as kiosk_running
from .persona import call_persona, with_known_voice
from .session import HalfsecAgent, build_session, build_vad
from .tracing import CallTracer
from .turn_feed import TurnFeed

log = logging.getLogger("halfsec.worker")

REQUIRED_ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
AGENT_NAME_ENV = "LIVEKIT_AGENT_NAME"  # LiveKit's own: an operator's environment names the agent
PROFILE_ENV = "HALFSEC_PROFILE"  # how the profile reaches job processes
RUNS_ENV = "HALFSEC_RUNS_DIR"
Mode = Literal["start", "dev"]
Entrypoint = Callable[[JobContext], Awaitable[None]]


class WorkerConfigError(RuntimeError):
    pass


def check_env(env: Mapping[str, str] = os.environ) -> None:
    missing = [k for k in REQUIRED_ENV if not env.get(k)]
    if missing:
        raise WorkerConfigError(
            f"{', '.join(missing)} not set: `halfsec up` joins rooms on a LiveKit server "
            "(e.g. LIVEKIT_URL=wss://your-server LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=...); "
            "without one, run `halfsec demo`"
        )


def agent_name(settings: Settings, env: Mapping[str, str] = os.environ) -> str:
    """The name LiveKit dispatches this worker's jobs by: LIVEKIT_AGENT_NAME, else
    `worker.agent_name` ("": automatic dispatch). LiveKit itself puts LIVEKIT_AGENT_NAME_OVERRIDE
    above both."""
    return env.get(AGENT_NAME_ENV) or settings.worker.agent_name


def prewarm(proc: JobProcess) -> None:
    # Once per job process, before a caller waits on them: the settings, Silero's VAD (shared
    # by the process's calls) and the TTS's apology. The other models live in the services,
    # never in a forked job process.
    settings = load_settings(os.environ.get(PROFILE_ENV, "cpu"))
    proc.userdata["settings"] = settings
    build_vad(settings)
    keep_tts_fallback(settings)
    # What the process holds now lasts as long as it does: out of the collector's way. A full
    # collection of a call process's heap (~240k objects) stops its event loop for 100-150 ms
    # (gc callbacks in `halfsec bench calls`' call processes, 2026-12-08); after this, one walks
    # only what the calls made since. Once, here: frozen per call, a call's uncollected cycles
    # would stay for good.
    gc.collect()
    gc.freeze()


async def entrypoint(ctx: JobContext) -> None:
    profile = ctx.proc.userdata["settings"]  # set by prewarm, which LiveKit runs first
    persona = await with_known_voice(call_persona(ctx.job.metadata, ctx.job.room.metadata), profile)
    settings = persona.apply(profile)
    turn_log = TurnLog(rooms_dir() / f"{ctx.room.name}-{uuid.uuid4().hex[:6]}" / "turns.jsonl")
    feed = TurnFeed(ctx.room)

    def on_record(record: TurnRecord) -> None:
        turn_log.write(record)
        feed.send(record)

    tracer = CallTracer(
        ctx.room.name,
        on_record,
        budget=Budget(*settings.latency.budget_values()),
        end_of_turn_by=settings.turn.detection,
        vad_silence_s=settings.vad.min_silence_s,
    )
    session, agent = build_session(settings, tracer)
    ctx.add_shutdown_callback(lambda: _close(tracer, turn_log, feed, agent))
    await session.start(agent=agent, room=ctx.room)
    await ctx.connect()


async def _close(tracer: CallTracer, turn_log: TurnLog, feed: TurnFeed, agent: HalfsecAgent) -> None:
    tracer.close()
    turn_log.close()
    await feed.aclose()
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


Beside = Callable[[], AbstractAsyncContextManager[Any]]


class HalfsecServer(AgentServer):
    """LiveKit's worker, with what runs beside it in its main process for as long as it runs:
    `beside` first, in order (the model services this box runs, the kiosk page), then the
    dashboard. LiveKit's runner keeps `run` going through the drain and ends it after, so the
    services outlive the last call; and the worker registers with LiveKit, taking calls, only
    once they are healthy."""

    def __init__(self, settings: Settings, *, beside: Sequence[Beside] = (), **options: Any) -> None:
        super().__init__(**options)
        self.settings = settings
        self._beside = beside

    async def run(self, *, devmode: bool = False, unregistered: bool = False) -> None:
        async with AsyncExitStack() as stack:
            for open_beside in self._beside:
                await stack.enter_async_context(open_beside())
            await stack.enter_async_context(watch_rooms(self.settings))
            await super().run(devmode=devmode, unregistered=unregistered)


def make_server(settings: Settings, *, entrypoint: Entrypoint = entrypoint, **options: Any) -> HalfsecServer:
    """LiveKit's worker, reporting its load as calls in progress over `call_capacity`, so the
    LiveKit server stops dispatching to it when it is full. `options` go to AgentServer as they
    are (a test's `port=0` for its health server)."""
    admission = Admission(call_capacity(settings))
    server = HalfsecServer(
        settings,
        setup_fnc=prewarm,
        load_fnc=lambda server: admission.load(len(server.active_jobs)),
        load_threshold=admission.load_threshold,
        drain_timeout=settings.worker.drain_timeout_s,
        **options,
    )
    server.rtc_session(
        entrypoint, agent_name=agent_name(settings), on_request=lambda req: admit(admission, server, req)
    )
    return server


async def admit(admission: Admission, server: AgentServer, req: JobRequest) -> None:
    """Accept the job, or refuse it when full: the load LiveKit saw may be a moment old."""
    if (why := admission.refusal(len(server.active_jobs))) is not None:
        log.warning("refusing the call in room %s: %s", req.room.name, why)
        await req.reject(terminate=False)  # not terminated: LiveKit offers it to another worker
        return
    await req.accept()


def serve(server: AgentServer, mode: Mode = "start", log_level: str = "INFO") -> None:
    """Run `server` until SIGTERM/SIGINT, as `python -m livekit.agents start` would (`dev`: its
    --dev). LiveKit's logging (JSON, or colored in dev) replaces the CLI's own handler, so each
    line is written once, in the form a LiveKit deployment's log shipping expects."""
    logging.getLogger().handlers.clear()
    _run_worker(server, proto.CliArgs(log_level=log_level, dev=mode == "dev"))


def check_dashboard_port(settings: Settings) -> None:
    """The dashboard's address is free: taken, the worker would fail inside LiveKit's runner,
    with a traceback instead of this line."""
    o = settings.latency
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will bind
        try:
            probe.bind((o.dashboard_host, o.dashboard_port))
        except OSError as exc:
            raise WorkerConfigError(
                f"latency.dashboard_port {o.dashboard_port} on {o.dashboard_host} is taken ({exc.strerror}): "
                "stop what serves it, or set HALFSEC_LATENCY__DASHBOARD_PORT"
            ) from None


def run_worker(
    profile: str, mode: Mode = "start", log_level: str = "INFO", *, services: bool = True, kiosk: bool = True
) -> None:
    """`services`: start the model services this box runs (none named by a URL elsewhere);
    `kiosk`: serve the kiosk page and its token endpoint."""
    check_env()
    settings = load_settings(profile)  # a bad profile fails here, not in every job process
    check_dashboard_port(settings)
    os.environ[PROFILE_ENV] = profile
    beside: list[Beside] = []
    if services:
        beside.append(lambda: supervisor(settings, profile))
    if kiosk:
        beside.append(lambda: _kiosk(settings))
    server = make_server(settings, beside=beside)
    serve(server, mode, log_level)
    if server._connection_failed:  # LiveKit logged why and shut down; the exit status says so too
        raise WorkerConfigError(f"could not connect to the LiveKit server at {os.environ.get('LIVEKIT_URL')}")


@asynccontextmanager
async def _kiosk(settings: Settings) -> AsyncIterator[None]:
    async with kiosk_running(settings) as kiosk:
        log.info("kiosk page at %s", kiosk.url)
        yield
