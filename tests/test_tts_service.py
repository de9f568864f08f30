"""services/tts over real HTTP with real Kokoro int8, checked by ear (Whisper reads it back)."""

import time

import aiohttp
import numpy as np
import pytest

from agent.plugins.asr_stt import to_pcm16_mono
from livekit import rtc
from services.asr.client import AsrClient
from services.tts.client import TtsClient, TtsError

from .conftest import normalized_wer

SENTENCES = [
    "Your appointment is on Tuesday at three in the afternoon.",
    "I have booked a table for two people near the window.",
]


@pytest.fixture
async def clients(services, settings):
    tts, asr = TtsClient(settings.tts.url), AsrClient(settings.asr.url)
    yield tts, asr
    await tts.aclose()
    await asr.aclose()


async def synthesize(tts: TtsClient, text: str, **kw) -> tuple[int, np.ndarray]:
    chunks, rate = [], 0
    async for rate, data in tts.stream(text, **kw):
        chunks.append(np.frombuffer(data, np.int16))
    return rate, np.concatenate(chunks)


async def test_speech_is_intelligible_roundtrip(clients):
    tts, asr = clients
    for text in SENTENCES:
        rate, pcm = await synthesize(tts, text)
        assert rate == 24000
        assert 1.5 < len(pcm) / rate < 8.0  # about the length of the sentence spoken
        frame = rtc.AudioFrame(pcm.tobytes(), rate, 1, len(pcm))
        heard = (await asr.transcribe(to_pcm16_mono(frame))).text
        assert normalized_wer(text, heard) <= 0.15, heard


async def test_streams_first_piece_before_the_rest(clients):
    tts, _ = clients
    t0 = time.perf_counter()
    first = None
    async for _ in tts.stream("Hello there. " + SENTENCES[0] + " " + SENTENCES[1]):
        first = first or time.perf_counter() - t0
    total = time.perf_counter() - t0
    # three pieces: the first one's audio arrives well before the last piece is synthesised
    assert first < 0.6 * total, (first, total)


async def test_unknown_voice_lists_voices(clients):
    tts, _ = clients
    with pytest.raises(TtsError, match=r"unknown voice 'xx_nobody'; available: .*af_heart"):
        await synthesize(tts, "Hello.", voice="xx_nobody")
    assert "bf_emma" in await tts.voices()


@pytest.mark.parametrize(
    "body, status, message",
    [(b"not json", 400, "body"), (b'{"text": ""}', 400, "text"), (b'{"text": "  ...  "}', 400, "nothing speakable")],
)
async def test_bad_requests_get_clear_errors(settings, services, body, status, message):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{settings.tts.url}/v1/synthesize", data=body) as resp:
            assert resp.status == status
            assert message in (await resp.json())["error"]
