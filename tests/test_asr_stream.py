"""services/asr streaming over a real WebSocket with real Whisper tiny.en: the events of a turn,
the preflight reused as the final, no words from silence/noise/music, a turn longer than
Whisper's 30 s window, a client that vanishes mid-utterance. Bad input: test_asr_bad_input.py."""

import asyncio

import aiohttp
import numpy as np
import pytest
import soundfile as sf
from aiohttp.test_utils import TestServer

from services.asr.client import AsrClient
from services.asr.engine import WhisperEngine
from services.asr.protocol import Closed, Final
from services.asr.server import make_app

from .conftest import _normalize as normalize
from .conftest import normalized_wer

SILENCE = np.zeros(16000, np.int16)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    """Pink-ish noise at a speech-like level (the bench streams real recordings; a unit of the
    suite cannot fetch them)."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(int(seconds * 16000))
    spectrum = np.fft.rfft(white) / np.sqrt(np.arange(1, len(white) // 2 + 2))
    pink = np.fft.irfft(spectrum, n=len(white))
    return (pink / np.abs(pink).max() * 0.3 * 32767).astype(np.int16)


@pytest.fixture
async def asr(asr_service, settings):
    client = AsrClient(settings.asr.client_url)
    yield client
    await client.aclose()


def pcm(path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="int16")
    assert rate == 16000
    return audio


async def events_of(client: AsrClient, audio: np.ndarray, *, realtime: bool = True) -> list:
    stream = await client.stream()
    sent = asyncio.get_running_loop().time()

    async def send() -> None:
        for i in range(0, len(audio), 320):
            await stream.send(audio[i : i + 320].tobytes())
            if realtime:
                await asyncio.sleep(max(0.0, sent + (i + 320) / 16000 - asyncio.get_running_loop().time()))
        await stream.end()

    sending = asyncio.create_task(send())
    events = [ev async for ev in stream.events()]
    await sending
    return events


async def test_a_turn_streams_every_event_and_the_preflight_is_the_final(asr, speech):
    wav, reference = speech[0]  # 7 s
    events = await events_of(asr, np.concatenate([SILENCE[:8000], pcm(wav), SILENCE]))
    kinds = [e.type for e in events]
    assert kinds[0] == "ready" and kinds[-1] == "closed"
    turn = [k for k in kinds if k != "interim"][1:-1]
    assert turn == ["speech_start", "preflight", "end_of_speech", "final"] or turn == [
        "speech_start",
        "end_of_speech",
        "preflight",
        "final",
    ], kinds
    assert kinds.count("interim") >= 2  # while the caller talks
    final = next(e for e in events if e.type == "final")
    preflight = next(e for e in events if e.type == "preflight")
    assert final.reused_preflight and final.text == preflight.text  # nothing decoded after the endpoint
    assert normalized_wer(reference, final.text) < 0.15, final.text
    end = next(e for e in events if e.type == "end_of_speech")
    assert 0.5 + 6.5 < end.last_voiced_s < end.stream_s  # the speech ends near 7.6 s of stream


async def test_silence_noise_music_and_breath_produce_no_words(asr):
    t = np.arange(16000 * 8) / 16000
    chord = sum(np.sin(2 * np.pi * f * t) for f in (262, 330, 392)) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    music = (chord / 3 * 0.3 * 32767).astype(np.int16)
    breath = (
        noise(8, seed=3) * np.tile(np.r_[np.hanning(16000 * 3 // 2), np.zeros(16000 // 2)], 4)[: 16000 * 8]
    ).astype(np.int16)
    audio = np.concatenate([np.zeros(16000 * 8, np.int16), noise(8), music, breath])
    events = await events_of(asr, audio, realtime=False)
    words = [e.text for e in events if e.type in ("interim", "preflight", "final") and e.text]
    assert words == [], words
    assert isinstance(events[-1], Closed) and events[-1].received_s == pytest.approx(32.0, abs=0.05)


async def test_a_turn_longer_than_whispers_window_loses_and_doubles_no_words(settings, speech):
    # One 35 s turn: the five utterances and the first again, without pauses long enough to end
    # it (a 1.5 s endpoint for this service). Pieces are cut and settled at phrase boundaries.
    long_turn = settings.model_copy(update={"vad": settings.vad.model_copy(update={"min_silence_s": 1.5})})
    parts = speech + speech[:2]
    audio = np.concatenate([pcm(w) for w, _ in parts])
    reference = " ".join(text for _, text in parts)
    assert len(audio) / 16000 > 30
    server = TestServer(make_app(WhisperEngine(long_turn), long_turn))
    await server.start_server()
    client = AsrClient(str(server.make_url("")))
    try:
        events = await events_of(client, np.concatenate([audio, SILENCE, SILENCE]))
    finally:
        await client.aclose()
        await server.close()
    finals = [e for e in events if isinstance(e, Final)]
    assert len(finals) == 1 and finals[0].audio_s > 30
    hyp = finals[0].text
    assert normalized_wer(reference, hyp) < 0.15, hyp
    # a doubled or dropped phrase at a seam would shift the count (the reader's extra "a" is one)
    assert abs(len(normalize(hyp).split()) - len(normalize(reference).split())) <= 2, hyp


async def test_an_abrupt_disconnect_leaves_the_service_serving(asr, settings, speech):
    stream = await asr.stream()
    audio = pcm(speech[0][0])
    for i in range(0, 16000 * 3, 3200):  # mid-utterance, decodes queued
        await stream.send(audio[i : i + 3200].tobytes())
    stream._ws._response.connection.transport.abort()  # no close handshake
    await asyncio.sleep(0.5)
    events = await events_of(asr, np.concatenate([pcm(speech[4][0]), SILENCE]), realtime=False)
    assert any(isinstance(e, Final) and e.text for e in events)
    async with aiohttp.ClientSession() as http, http.get(f"{settings.asr.client_url}/health") as resp:
        assert (await resp.json())["streams"] == 0
