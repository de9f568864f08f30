"""services/tts: one Kokoro model, many calls, PCM streamed back over chunked HTTP (protocol.py).

A request's text is made speakable (text/normalize.py), cut into pieces at sentence ends
(text/cuts.py), and each piece's audio is written as soon as it exists, its silent edges fitted
(edges.py).
Pieces of all requests go through one queue (scheduler.py) that serves replies' first pieces
first. When the caller hangs up (a barge-in closes the connection), aiohttp cancels the
handler: the piece being synthesised is stopped and the rest are never started.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing

import numpy as np
from aiohttp import web
from pydantic import ValidationError

from configs import Settings
from configs.settings import TtsSettings

from ..http import auth_middlewares, json_error, service_main
from .backend import TtsBackend, UnknownVoice, load_backend, warm
from .edges import EdgeFitter
from .protocol import (
    HEALTH_PATH,
    SAMPLE_RATE_HEADER,
    SYNTHESIZE_PATH,
    VOICES_PATH,
    SynthesizeRequest,
)
from .scheduler import SynthesisQueue
from .text.cuts import split_pieces
from .text.normalize import speakable

log = logging.getLogger("halfsec.tts")
QUEUE = web.AppKey("queue", SynthesisQueue)
WARM_PIECE = (  # 174 characters, 190 phoneme tokens: as long as ordinary pieces come (at most 180)
    "Your table for six is ready at seven thirty, and the museum is about three kilometres from "
    "your hotel, roughly a ten minute drive, open until nine in the evening on weekdays."
)


def to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class KeptPhrases:
    """The audio of phrases asked for with `keep` (protocol.py), by text, voice and speed; the
    least recently asked goes first past `size`. A call's fallbacks were made at each call's
    start: two calls starting together made six phrases on the cores their first replies needed
    (`halfsec bench calls --concurrency 2`, first turns' TTS TTFB 3.6-6.8 s against 0.5-2.8 s)."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._audio: OrderedDict[tuple[str, str, float], bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._audio)

    def get(self, key: tuple[str, str, float]) -> bytes | None:
        if (audio := self._audio.get(key)) is not None:
            self._audio.move_to_end(key)
        return audio

    def put(self, key: tuple[str, str, float], audio: bytes) -> None:
        self._audio[key] = audio
        self._audio.move_to_end(key)
        while len(self._audio) > self._size:
            self._audio.popitem(last=False)


def make_app(
    backend: TtsBackend, settings: Settings, keep_at_start: Sequence[str] = (), openers: Sequence[str] = ()
) -> web.Application:
    """The service around `backend`. Serve it with handler cancellation on (see `serve`): that is
    how a hang-up reaches the queue. `keep_at_start`: phrases made and kept before it answers;
    `openers`: replies' first pieces made and kept before it answers, for the default voice and
    speed. A reply whose first piece is one of them has it at once: replies open with the same few
    words again and again ("Sure,", "Of course,"), and on a 2-core AMD EPYC Kokoro's first audio
    for a piece of one to three words took 0.4-0.8 s in calls (docs/benchmarks.md, 7 Dec).
    Making the 28 defaults adds 8.4-8.8 s to the service's start (a Zen 4 EPYC, `halfsec
    services --only tts` with and without them, twice: 28-29 s against 19.5-20 s). Only these:
    first pieces kept as they came would make a benchmark's second run, or one side of `bench
    compare`, hear the other's work."""
    queue = SynthesisQueue(backend)
    kept_phrases = KeptPhrases()
    kept_openers: dict[tuple[str, str, float], bytes] = {}
    remembered = 0  # replies' first pieces answered from `kept_openers`

    async def health(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "status": "ok",
                "backend": backend.name,
                "pieces": dataclasses.asdict(queue.counts),
                "waiting": queue.waiting,
                "running": queue.running,
                "openers": {"kept": len(kept_openers), "remembered": remembered},
            }
        )

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
        pieces = split_pieces(speakable(req.text))
        if not pieces:  # an emoji, a markdown rule, whitespace: fine, and silent
            return web.Response(status=204, headers={SAMPLE_RATE_HEADER: str(backend.sample_rate)})
        speed = req.speed or settings.tts.speed

        resp = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        resp.headers[SAMPLE_RATE_HEADER] = str(backend.sample_rate)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        key = (req.text, voice, speed)
        if req.keep and (audio := kept_phrases.get(key)) is not None:
            await resp.write(audio)
            await resp.write_eof()
            return resp
        kept = bytearray() if req.keep else None
        asked = 0

        def started() -> None:
            nonlocal asked
            asked += 1

        try:
            async for pcm in audio_of(pieces, voice, speed, first=not req.continues, started=started):
                await resp.write(pcm)
                if kept is not None:
                    kept += pcm
        except (asyncio.CancelledError, ConnectionError) as exc:
            # Hung up. The piece in hand the queue has counted; these were never asked for.
            queue.counts.dropped += len(pieces) - asked
            if isinstance(exc, asyncio.CancelledError):
                raise
            return resp
        if kept is not None:  # whole: a phrase cut short by a hang-up is not kept
            kept_phrases.put(key, bytes(kept))
        await resp.write_eof()
        return resp

    async def audio_of(
        pieces: list[str], voice: str, speed: float, first: bool, started: Callable[[], None] = lambda: None
    ) -> AsyncIterator[bytes]:
        """The PCM of `pieces` as the queue makes it, each piece's edges fitted (`first`: the
        first piece opens a reply: one of `kept_openers` comes from memory); `started` is called
        as each piece is asked for."""
        nonlocal remembered
        for i, piece in enumerate(pieces):
            started()
            if first and i == 0 and (pcm := kept_openers.get((piece, voice, speed))) is not None:
                remembered += 1
                yield pcm
                continue
            edges = EdgeFitter(backend.sample_rate, piece)
            async with aclosing(queue.stream(piece, voice, speed, first=first and i == 0)) as parts:
                async for part in parts:
                    if len(audio := edges.feed(part)):  # nothing yet when the fit holds quiet audio back
                        yield to_pcm16(audio)
            if len(audio := edges.close()):
                yield to_pcm16(audio)

    async def keep_phrases(_: web.Application) -> None:
        voice, speed = settings.tts.voice, settings.tts.speed
        if voice not in backend.voices:
            return

        async def made(pieces: list[str]) -> bytes:
            return b"".join([pcm async for pcm in audio_of(pieces, voice, speed, True)])

        for text in keep_at_start:
            if pieces := split_pieces(speakable(text)):
                kept_phrases.put((text, voice, speed), await made(pieces))
        for text in openers:
            if pieces := split_pieces(speakable(text)):
                kept_openers[(pieces[0], voice, speed)] = await made(pieces[:1])
        if keep_at_start or openers:
            log.info("made and kept %d phrases and %d reply openers", len(kept_phrases), len(kept_openers))

    async def close_queue(_: web.Application) -> None:
        await queue.aclose()

    app = web.Application(client_max_size=64 * 1024, middlewares=auth_middlewares(settings))
    app[QUEUE] = queue
    app.on_startup.append(keep_phrases)
    app.on_cleanup.append(close_queue)
    app.router.add_get(HEALTH_PATH, health)
    app.router.add_get(VOICES_PATH, voices)
    app.router.add_post(SYNTHESIZE_PATH, synthesize)
    return app


def build(settings: Settings) -> tuple[web.Application, TtsSettings]:
    backend = load_backend(settings)
    # Warm the graph before the first caller, on a piece as long as the service cuts (~190
    # phoneme tokens): onnxruntime's arena grows to the largest piece it has run and keeps it, so
    # warmed on "Ready." RSS climbed for the first minutes of calls (+15 % when a 248-token piece
    # came, docs/reliability.md). Warmed here, it starts at its working size (5 s at start, not 0.7).
    warm(backend, WARM_PIECE, settings.tts.voice)
    # The agents' fallbacks, asked for with `keep` in every call: made before the first call, or
    # that call makes them on the cores its first reply needs ("Sure." took 1.4 s in a first
    # call's first turn, 0.5-0.7 s in later calls).
    app = make_app(backend, settings, keep_at_start=settings.fallback_phrases(), openers=settings.tts.openers)
    return app, settings.tts


if __name__ == "__main__":
    service_main("tts", "halfsec TTS service (Kokoro-82M)", build, handler_cancellation=True)
