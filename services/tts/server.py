"""services/tts: one Kokoro model, many calls, PCM streamed back over chunked HTTP (protocol.py).

A request's text is synthesised piece by piece (sentence ends split it) and each piece's audio is
written as soon as it exists. If the caller hangs up (barge-in closes the connection), the pieces
not yet started are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import re

import numpy as np
from aiohttp import web
from pydantic import ValidationError

from configs import Settings
from configs.settings import TtsSettings

from ..http import json_error, service_main
from .backend import TtsBackend, UnknownVoice, load_backend
from .protocol import (
    HEALTH_PATH,
    SAMPLE_RATE_HEADER,
    SYNTHESIZE_PATH,
    VOICES_PATH,
    SynthesizeRequest,
)

log = logging.getLogger("halfsec.tts")
_PIECE_END = re.compile(r"(?<=[.!?;])\s+")
_SPEAKABLE = re.compile(r"\w")


def split_pieces(text: str) -> list[str]:
    return [p for p in (s.strip() for s in _PIECE_END.split(text)) if _SPEAKABLE.search(p)]


def to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def make_app(backend: TtsBackend, settings: Settings) -> web.Application:
    lock = asyncio.Lock()  # one synthesis at a time: the model already uses every core given

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "backend": backend.name})

    async def voices(_: web.Request) -> web.Response:
        return web.json_response({"voices": backend.voices, "default": settings.tts.voice})

    async def synthesize(request: web.Request) -> web.StreamResponse:
        try:
            req = SynthesizeRequest.model_validate_json(await request.read())
        except ValidationError as exc:
            err = exc.errors()[0]
            return json_error(400, f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}")
        if len(req.text) > settings.tts.max_text_chars:
            return json_error(413, f"text longer than {settings.tts.max_text_chars} characters")
        voice = req.voice or settings.tts.voice
        if voice not in backend.voices:
            return json_error(400, str(UnknownVoice(voice, backend.voices)))
        pieces = split_pieces(req.text)
        if not pieces:
            return json_error(400, "nothing speakable in text")
        speed = req.speed or settings.tts.speed

        resp = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        resp.headers[SAMPLE_RATE_HEADER] = str(backend.sample_rate)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for piece in pieces:
            async with lock:
                audio = await asyncio.to_thread(backend.synthesize, piece, voice, speed)
            await resp.write(to_pcm16(audio))
        await resp.write_eof()
        return resp

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_get(HEALTH_PATH, health)
    app.router.add_get(VOICES_PATH, voices)
    app.router.add_post(SYNTHESIZE_PATH, synthesize)
    return app


def build(settings: Settings) -> tuple[web.Application, TtsSettings]:
    backend = load_backend(settings)
    backend.synthesize("Ready.", settings.tts.voice, 1.0)  # warm the graph before the first caller
    return make_app(backend, settings), settings.tts


if __name__ == "__main__":
    service_main("tts", "halfsec TTS service (Kokoro-82M)", build)
