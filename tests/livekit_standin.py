"""A stand-in for the one part of a LiveKit server that a worker talks to: its agent WebSocket
(`/agent`), speaking LiveKit's own protobuf messages (`livekit.protocol.agent`). No LiveKit
server can run here; this lets the real AgentServer register, report its load, answer job
offers and run jobs in its own job processes, exactly as it would against one.

The test plays the server's part: it reads what the worker sends and offers and assigns jobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import WSMsgType, web
from livekit import api
from livekit.protocol import agent, models

API_KEY, API_SECRET = "devkey", "secret-secret-secret-secret-0123"
WAIT_S = 60.0  # a loaded 2-core box starts job processes slowly; nothing here is timed


class StandIn:
    def __init__(self) -> None:
        self.registered: asyncio.Future[agent.RegisterWorkerRequest] = asyncio.get_running_loop().create_future()
        self.identity_checked = False  # the worker's bearer token verified with the API secret
        self.statuses: list[agent.UpdateWorkerStatus] = []
        self._answers: dict[str, asyncio.Future[agent.AvailabilityResponse]] = {}
        self._changed = asyncio.Condition()
        self._ws: web.WebSocketResponse | None = None

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        claims = api.TokenVerifier(API_KEY, API_SECRET).verify(token)
        self.identity_checked = bool(claims.video and claims.video.agent)
        ws = self._ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                continue
            message = agent.WorkerMessage.FromString(msg.data)
            which = message.WhichOneof("message")
            if which == "register":
                await self._send(agent.ServerMessage(register=agent.RegisterWorkerResponse(worker_id="AW_standin")))
                self.registered.set_result(message.register)
            elif which == "availability":
                self._answers.setdefault(message.availability.job_id, asyncio.Future()).set_result(message.availability)
            elif which == "update_worker":
                self.statuses.append(message.update_worker)
            async with self._changed:
                self._changed.notify_all()
        return ws

    async def _send(self, message: agent.ServerMessage) -> None:
        assert self._ws is not None
        await self._ws.send_bytes(message.SerializeToString())

    async def offer(self, job_id: str, room: str = "support-1", metadata: str = "") -> agent.AvailabilityResponse:
        """Offer a job as the server does (AvailabilityRequest); the worker's answer. An accepted
        job is assigned at once, so the worker launches it."""
        job = agent.Job(
            id=job_id,
            type=agent.JobType.JT_ROOM,
            room=models.Room(sid=f"RM_{job_id}", name=room),
            metadata=metadata,
        )
        answer = self._answers.setdefault(job_id, asyncio.Future())
        await self._send(agent.ServerMessage(availability=agent.AvailabilityRequest(job=job)))
        response = await asyncio.wait_for(answer, WAIT_S)
        if response.available:
            await self._send(agent.ServerMessage(assignment=agent.JobAssignment(job=job, token="standin-token")))
        return response

    async def status(self, matches: Callable[[agent.UpdateWorkerStatus], bool]) -> agent.UpdateWorkerStatus:
        """The first status update (from now on) that `matches`."""
        seen = len(self.statuses)
        async with asyncio.timeout(WAIT_S), self._changed:
            while True:
                for update in self.statuses[seen:]:
                    if matches(update):
                        return update
                seen = len(self.statuses)
                await self._changed.wait()


@asynccontextmanager
async def standin_server() -> AsyncIterator[tuple[StandIn, str]]:
    """The stand-in on a free loopback port, and its URL for LIVEKIT_URL."""
    standin = StandIn()
    app = web.Application()
    app.router.add_get("/agent", standin.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield standin, f"ws://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
