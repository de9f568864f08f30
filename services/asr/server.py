"""services/asr: one faster-whisper model, many calls, over HTTP (see protocol.py).

Decodes run one at a time in a worker thread (CTranslate2 already uses every core it is given);
callers beyond `asr.max_queue` get 503 instead of an unbounded queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import numpy as np
from aiohttp import web

from configs import Settings
from configs.settings import HUB_PREFIX, AsrSettings

from ..http import json_error, service_main
from .protocol import HEALTH_PATH, SAMPLE_RATE, TRANSCRIBE_PATH, Transcript

log = logging.getLogger("halfsec.asr")


class WhisperEngine:
    def __init__(self, settings: Settings) -> None:
        from faster_whisper import WhisperModel  # heavy import: only in the service process

        opts = settings.asr
        path = settings.model_path(opts.model)
        if not opts.model.startswith(HUB_PREFIX) and not (Path(path) / "model.bin").is_file():
            raise FileNotFoundError(
                f"ASR model not found at {path} (asr.model={opts.model!r}); run `halfsec models`"
            )
        t0 = time.perf_counter()
        self.model = WhisperModel(
            path, device=opts.device, compute_type=opts.compute_type, cpu_threads=opts.cpu_threads
        )
        self.name = opts.model
        self.language = opts.language
        self.beam_size = opts.beam_size
        log.info("loaded %s in %.2fs", path, time.perf_counter() - t0)

    def transcribe(self, audio: np.ndarray) -> Transcript:
        t0 = time.perf_counter()
        segments, info = self.model.transcribe(
            audio,
            language=self.language,
            beam_size=self.beam_size,
            # Each request is one user turn: text from an earlier turn must not steer this one.
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,  # the agent's Silero VAD already cut the turn
        )
        text = " ".join(s.text.strip() for s in segments if s.no_speech_prob < 0.6).strip()
        return Transcript(
            text=text,
            language=info.language,
            audio_s=len(audio) / SAMPLE_RATE,
            decode_ms=(time.perf_counter() - t0) * 1000.0,
        )


def decode_pcm16(body: bytes, max_audio_s: float) -> np.ndarray:
    if not body:
        raise ValueError("empty body: expected 16-bit PCM samples")
    if len(body) % 2:
        raise ValueError("body length is odd: expected whole 16-bit PCM samples")
    if len(body) > max_audio_s * SAMPLE_RATE * 2:
        raise ValueError(f"audio longer than {max_audio_s:.0f} s")
    return np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768.0


def make_app(engine: WhisperEngine, max_queue: int, max_audio_s: float) -> web.Application:
    lock = asyncio.Lock()
    waiting = 0

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "model": engine.name})

    async def transcribe(request: web.Request) -> web.Response:
        nonlocal waiting
        rate = request.query.get("sample_rate", str(SAMPLE_RATE))
        if rate != str(SAMPLE_RATE):
            return json_error(400, f"sample_rate must be {SAMPLE_RATE}, got {rate!r}")
        try:
            audio = decode_pcm16(await request.read(), max_audio_s)
        except ValueError as exc:
            return json_error(400, str(exc))
        if waiting >= max_queue:
            return json_error(503, "busy: too many transcriptions queued")
        waiting += 1
        try:
            async with lock:
                result = await asyncio.to_thread(engine.transcribe, audio)
        finally:
            waiting -= 1
        return web.json_response(result.model_dump())

    app = web.Application(client_max_size=int(max_audio_s * SAMPLE_RATE * 2) + 1024)
    app.router.add_get(HEALTH_PATH, health)
    app.router.add_post(TRANSCRIBE_PATH, transcribe)
    return app


def build(settings: Settings) -> tuple[web.Application, AsrSettings]:
    app = make_app(WhisperEngine(settings), settings.asr.max_queue, settings.asr.max_audio_s)
    return app, settings.asr


if __name__ == "__main__":
    service_main("asr", "halfsec ASR service (faster-whisper)", build)
