"""services/asr: one faster-whisper model, many calls (see protocol.py).

Streams (WebSocket) are the agent's path; POST /v1/transcribe is the offline path, kept for
whole recordings and as the bench's reference. All decodes share one fair queue.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel

from configs import Settings
from configs.settings import AsrSettings

from ..http import auth_middlewares, json_error, service_main
from .endpointer import Endpointer, VadPool
from .engine import WhisperEngine
from .protocol import (
    HEALTH_PATH,
    SAMPLE_RATE,
    STREAM_PARAMS,
    STREAM_PATH,
    TRANSCRIBE_PATH,
    Error,
    Ready,
)
from .scheduler import DecodeScheduler, Kind
from .stream import StreamSession

log = logging.getLogger("halfsec.asr")


def decode_pcm16(body: bytes, max_audio_s: float) -> np.ndarray:
    """Raw samples by contract: only what cannot be PCM (no bytes, half a sample, too long) is
    refused. Bytes are never sniffed for a file header: any two bytes are a valid sample (one of
    -1025 starts with MP3's 0xFFFB), so a sniffer drops real audio. A file sent anyway is read
    as samples: a 16 kHz WAV is its speech after 22 samples of header noise, compressed audio is
    noise."""
    if not body:
        raise ValueError("empty body: expected 16-bit PCM samples")
    if len(body) % 2:
        raise ValueError("length is odd: expected whole 16-bit PCM samples")
    if len(body) > max_audio_s * SAMPLE_RATE * 2:
        raise ValueError(f"audio longer than {max_audio_s:g} s")
    return np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768.0


def stream_params_problem(query: dict[str, str]) -> str | None:
    for key, want in STREAM_PARAMS.items():
        got = query.get(key, want)
        if got != want:
            return f"{key} must be {want}, got {got!r} (resample/downmix to 16 kHz mono PCM16)"
    return None


def make_app(engine: WhisperEngine, settings: Settings) -> web.Application:
    opts: AsrSettings = settings.asr
    scheduler = DecodeScheduler(engine.decode, workers=opts.num_workers)
    sessions: dict[int, StreamSession] = {}
    vads = VadPool()
    ids = itertools.count(1)
    max_frame = int(opts.max_frame_s * SAMPLE_RATE * 2)

    async def on_startup(_: web.Application) -> None:
        scheduler.start()

    async def on_cleanup(_: web.Application) -> None:
        await scheduler.stop()

    async def health(_: web.Request) -> web.Response:
        # tasks: every asyncio task of the process, so a leak per stream shows from outside
        return web.json_response(
            {
                "status": "ok",
                "model": engine.name,
                "streams": len(sessions),
                "queued": scheduler.queued,
                "tasks": len(asyncio.all_tasks()),
            }
        )

    async def transcribe(request: web.Request) -> web.Response:
        rate = request.query.get("sample_rate", str(SAMPLE_RATE))
        if rate != str(SAMPLE_RATE):
            return json_error(400, f"sample_rate must be {SAMPLE_RATE}, got {rate!r}")
        try:
            audio = decode_pcm16(await request.read(), opts.max_audio_s)
        except ValueError as exc:
            return json_error(400, str(exc))
        if scheduler.queued >= opts.max_queue:
            return json_error(503, "busy: too many transcriptions queued")
        # the whole recording as one job in the shared queue, ranked like a final
        job = scheduler.submit(-next(ids), Kind.FINAL, audio, run=engine.transcribe)
        result = await job.future
        return web.json_response(result.model_dump())

    async def stream(request: web.Request) -> web.StreamResponse:
        # aiohttp itself closes (1009) on anything far beyond our limit, before buffering it
        ws = web.WebSocketResponse(max_msg_size=4 * max_frame, heartbeat=20.0)
        try:
            await ws.prepare(request)
        except ConnectionError:
            # The client left during the handshake: one that gave up on a hung service (SIGSTOP)
            # left its tries queued at the socket, each answered once the service resumed.
            log.info("a stream's client left before its handshake was answered")
            return ws
        # Refusals are an error event and a close code, which every WebSocket client can read.
        if problem := stream_params_problem(dict(request.query)):
            await ws.send_str(Error(message=problem, fatal=True).model_dump_json())
            await ws.close(code=WSCloseCode.POLICY_VIOLATION)
            return ws
        if len(sessions) >= opts.max_streams:
            busy = f"busy: {opts.max_streams} streams open, try again later"
            await ws.send_str(Error(message=busy, fatal=True).model_dump_json())
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER)
            return ws
        out: asyncio.Queue[BaseModel | None] = asyncio.Queue()

        async def writer() -> None:
            while (event := await out.get()) is not None:
                log.debug("stream %d: %r", sid, event)
                if ws.closed:
                    continue
                try:
                    await ws.send_str(event.model_dump_json())
                except ConnectionError:
                    pass

        vad = await vads.take()  # an await only when none is idle: a few may pass max_streams then
        sid = next(ids)
        session = StreamSession(
            sid, Endpointer(settings.vad, opts, vad.process, vad.reset), scheduler, opts, out.put_nowait
        )
        sessions[sid] = session
        writing = asyncio.create_task(writer())
        out.put_nowait(Ready(model=engine.name))
        close_code = WSCloseCode.OK
        try:
            while True:
                try:
                    msg = await ws.receive(timeout=opts.idle_timeout_s)
                except TimeoutError:
                    # Heartbeats keep a hung client's socket alive for ever: silence of the
                    # client itself is what ends it. Not an error of the client's (a muted
                    # caller's audio stops too): the reason tells it to reopen when it has audio.
                    out.put_nowait(
                        Error(
                            message=f"no message for {opts.idle_timeout_s:g} s: stream closed",
                            fatal=True,
                            reason="idle",
                        )
                    )
                    close_code = WSCloseCode.POLICY_VIOLATION
                    break
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    break
                if msg.type == WSMsgType.BINARY:
                    if len(msg.data) > max_frame:
                        out.put_nowait(
                            Error(
                                message=f"frame of {len(msg.data)} bytes: at most "
                                f"{max_frame} ({opts.max_frame_s:g} s) per frame",
                                fatal=True,
                            )
                        )
                        close_code = WSCloseCode.MESSAGE_TOO_BIG
                        break
                    try:
                        session.feed(decode_pcm16(msg.data, opts.max_frame_s))
                    except ValueError as exc:
                        out.put_nowait(Error(message=f"frame dropped: {exc}"))
                elif msg.type == WSMsgType.TEXT:
                    try:
                        kind = json.loads(msg.data).get("type")
                    except (ValueError, AttributeError):
                        kind = None
                    if kind == "end":
                        out.put_nowait(await session.finish())
                        break
                    out.put_nowait(Error(message='unknown message: send binary PCM, or {"type": "end"}'))
                elif msg.type == WSMsgType.ERROR:
                    log.info("stream %d: %s", sid, ws.exception())
                    break
        finally:
            session.close()
            del sessions[sid]
            vads.give(vad)
            out.put_nowait(None)
            await writing
            await ws.close(code=close_code)
        return ws

    app = web.Application(
        client_max_size=int(opts.max_audio_s * SAMPLE_RATE * 2) + 1024, middlewares=auth_middlewares(settings)
    )
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get(HEALTH_PATH, health)
    app.router.add_post(TRANSCRIBE_PATH, transcribe)
    app.router.add_get(STREAM_PATH, stream)
    return app


def build(settings: Settings) -> tuple[web.Application, AsrSettings]:
    return make_app(WhisperEngine(settings), settings), settings.asr


if __name__ == "__main__":
    service_main("asr", "halfsec ASR service (faster-whisper)", build)
