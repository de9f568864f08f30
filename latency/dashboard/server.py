"""`halfsec dashboard`: a local page that follows turns.jsonl and updates as turns land.

Routes:
  /             the page (static/index.html, plain JS + SVG; nothing from a CDN)
  /api/state    everything so far as JSON (`?since=N`: only records after the first N)
  /api/events   the same as server-sent events: the state on connect, then each batch of new turns
  /metrics      Prometheus text (latency.metrics), fed from the same records: no transcript
  /health       {"status": "ok"}

Who may see what is the caller's to say (agent/access.py): `middlewares` may refuse requests, and
`show_transcripts` says which requests get the turns' words; the others get the figures only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..budget import Budget
from ..metrics import TurnMetrics
from ..report import summarize
from ..summary import percentile
from .follow import TurnFollower

log = logging.getLogger("halfsec.dashboard")

STATIC = Path(__file__).resolve().parent / "static"
SENT_TURNS = 500  # the page gets at most this many recent turns on connect
POLL_S = 0.25
TRANSCRIPT_KEYS = ("user_text", "agent_text")  # what the caller and the agent said


class Dashboard:
    """The records seen so far, the metrics fed from them, and who is listening."""

    def __init__(self, source: str | os.PathLike[str], budget: Budget, *, window: int = 100) -> None:
        self.source = str(source)
        self.budget = budget
        self.window = window
        self.follower = TurnFollower(source, budget)
        self.records: list[dict[str, Any]] = []
        self.metrics = TurnMetrics(CollectorRegistry())
        # One queue per open /api/events stream; None tells it the server is stopping.
        self._listeners: set[asyncio.Queue[dict[str, Any] | None]] = set()

    def poll(self) -> list[dict[str, Any]]:
        new = self.follower.poll()
        for record in new:
            self.metrics.observe(record)
        self.records.extend(new)
        if new:
            update = self.state(since=len(self.records) - len(new))
            for queue in self._listeners:
                queue.put_nowait(update)
        return new

    def state(self, since: int = 0, *, transcripts: bool = True) -> dict[str, Any]:
        since = max(since, len(self.records) - SENT_TURNS)
        return {
            "source": self.source,
            "budget_ms": self.budget.to_json(),
            "window": self.window,
            "since": since,
            "total": len(self.records),
            "turns": [_slim(r, transcripts) for r in self.records[since:]],
            "rolling": summarize(self.records[-self.window :], self.budget, worst=0),
            "calls": calls_table(self.records, self.budget),
        }

    async def follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                self.poll()
            except OSError as exc:  # a file vanishing mid-read: try again next poll
                log.warning("reading %s: %s", self.source, exc)
            try:
                await asyncio.wait_for(stop.wait(), POLL_S)
            except TimeoutError:
                pass


def _slim(r: dict[str, Any], transcripts: bool = True) -> dict[str, Any]:
    """What the page draws (LiveKit's raw metrics stay in the file), with or without the words."""
    dropped = ("livekit", *(() if transcripts else TRANSCRIPT_KEYS))
    return {k: v for k, v in r.items() if k not in dropped}


def without_transcripts(state: dict[str, Any]) -> dict[str, Any]:
    """A state or update (`Dashboard.state`) without the turns' words."""
    return {**state, "turns": [_slim(t, transcripts=False) for t in state["turns"]]}


def calls_table(records: Sequence[dict[str, Any]], budget: Budget) -> list[dict[str, Any]]:
    """One row per call (session id), most recent first."""
    calls: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        calls.setdefault(str(r.get("session_id")), []).append(r)
    rows = []
    for session_id, turns in calls.items():
        v2v = [r["v2v_ms"] for r in turns if r.get("v2v_ms") is not None]
        blamed = [r["over_budget"][0] for r in turns if r.get("over_budget")]
        rows.append(
            {
                "session_id": session_id,
                "turns": len(turns),
                "v2v_p50": percentile(v2v, 50),
                "v2v_max": max(v2v) if v2v else None,
                "within": sum(1 for v in v2v if v <= budget.total_ms),
                "answered": len(v2v),
                "interrupted": sum(1 for r in turns if r.get("interrupted")),
                "fallback": sum(1 for r in turns if r.get("fallback")),
                "most_overrun": max(set(blamed), key=blamed.count) if blamed else None,
                "last_wall_time": max(r.get("wall_time") or 0 for r in turns),
            }
        )
    return sorted(rows, key=lambda c: -c["last_wall_time"])


def _everyone(request: web.Request) -> bool:
    return True


def make_app(
    dashboard: Dashboard,
    *,
    middlewares: Sequence[Middleware] = (),
    show_transcripts: Callable[[web.Request], bool] = _everyone,
) -> web.Application:
    app = web.Application(middlewares=middlewares)

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def state(request: web.Request) -> web.Response:
        since = int(request.query.get("since", 0))
        return web.json_response(dashboard.state(since=since, transcripts=show_transcripts(request)))

    async def events(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        dashboard._listeners.add(queue)
        words = show_transcripts(request)
        try:
            # a (re)connected page starts over from the full state
            update: dict[str, Any] | None = {**dashboard.state(transcripts=words), "reset": True}
            while update is not None:
                if not words:  # updates are built once for every listener, with the words
                    update = without_transcripts(update)
                await resp.write(f"data: {json.dumps(update)}\n\n".encode())
                update = await queue.get()
        finally:
            dashboard._listeners.discard(queue)
        return resp

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(dashboard.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def end_streams(app: web.Application) -> None:
        # Open event streams would otherwise hold the shutdown for its whole timeout.
        for queue in dashboard._listeners:
            queue.put_nowait(None)

    async def start_following(app: web.Application) -> Any:
        stop = asyncio.Event()
        task = asyncio.create_task(dashboard.follow(stop))
        yield
        stop.set()
        await task

    app.router.add_get("/", index)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/events", events)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    app.router.add_static("/static/", STATIC)
    app.cleanup_ctx.append(start_following)
    app.on_shutdown.append(end_streams)
    return app


@asynccontextmanager
async def running(
    source: str | os.PathLike[str],
    budget: Budget,
    *,
    host: str = "127.0.0.1",
    port: int = 8110,
    window: int = 100,
    middlewares: Sequence[Middleware] = (),
    show_transcripts: Callable[[web.Request], bool] = _everyone,
) -> AsyncIterator[Dashboard]:
    """The dashboard and /metrics served beside other work on this event loop (`halfsec up`)."""
    dashboard = Dashboard(source, budget, window=window)
    app = make_app(dashboard, middlewares=middlewares, show_transcripts=show_transcripts)
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield dashboard
    finally:
        await runner.cleanup()


def serve(
    source: str | os.PathLike[str],
    budget: Budget,
    *,
    host: str = "127.0.0.1",
    port: int = 8110,
    window: int = 100,
    announce: Callable[[str], None] = print,
    middlewares: Sequence[Middleware] = (),
    show_transcripts: Callable[[web.Request], bool] = _everyone,
) -> None:
    """Run until Ctrl-C or SIGTERM."""
    dashboard = Dashboard(source, budget, window=window)
    announce(f"dashboard on http://{host}:{port}/ following {source} (metrics at /metrics); Ctrl-C stops")
    app = make_app(dashboard, middlewares=middlewares, show_transcripts=show_transcripts)
    web.run_app(app, host=host, port=port, print=None, shutdown_timeout=2.0)
