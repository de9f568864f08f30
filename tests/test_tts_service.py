"""services/tts over real HTTP with real Kokoro int8, checked by ear (Whisper reads it back)."""

import asyncio
import time
from contextlib import aclosing

import numpy as np
import pytest
from livekit import rtc

from agent.plugins.asr_stt import to_pcm16_mono
from services.asr.client import AsrClient
from services.asr.engine import WhisperEngine
from services.audio import resample
from services.tts.bench import hear, whisper_ear
from services.tts.client import TtsClient, TtsError

from .conftest import normalized_wer

SENTENCES = [
    "Your appointment is on Tuesday at three in the afternoon.",
    "I have booked a table for two people near the window.",
]
# What the normaliser must get right for the words to come back: money, percentages, years,
# ordinals, units, abbreviations, markdown and emoji.
WRITTEN_REPLIES = [
    "**Sure!** The total comes to $42.50, including tax.",
    "About 85% of our customers renew, and we've been open since 1998.",
    "Dr. Patel is on the 3rd floor, about 200 m from the entrance 🙂.",
    "Your package weighs 2.5 kg, so shipping is $8.99.",
]
# Six pieces, each a second or more of Kokoro's time on this CPU.
LONG_REPLY = " ".join(
    [
        "Thank you for calling the clinic, we are glad you got through to us this afternoon.",
        "Before we go on, I would like to read you a few details about your next appointment.",
        "The doctor will see you at the main building, on the second floor, near the lifts.",
        "Please bring your insurance card, a list of your medicines and any recent letters.",
        "If you need to change the time, call us at least a day ahead and we will find another.",
        "Parking is free for patients, and the ticket machine is just inside the front door.",
    ]
)


@pytest.fixture
async def tts(tts_service, settings):
    client = TtsClient(settings.tts.client_url)
    yield client
    await client.aclose()


@pytest.fixture
async def asr(asr_service, settings):
    client = AsrClient(settings.asr.client_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def ear(settings) -> WhisperEngine:
    return whisper_ear(settings)


async def synthesize(tts: TtsClient, text: str, **kw) -> tuple[int, np.ndarray]:
    chunks, rate = [], 0
    async for piece_rate, data in tts.stream(text, **kw):
        rate = piece_rate
        chunks.append(np.frombuffer(data, np.int16))
    return rate, np.concatenate(chunks)


async def test_speech_is_intelligible_roundtrip(tts, asr):
    for text in SENTENCES:
        rate, pcm = await synthesize(tts, text)
        assert rate == 24000
        assert 1.5 < len(pcm) / rate < 8.0  # about the length of the sentence spoken
        frame = rtc.AudioFrame(pcm.tobytes(), rate, 1, len(pcm))
        heard = (await asr.transcribe(to_pcm16_mono(frame))).text
        assert normalized_wer(text, heard) <= 0.15, heard


async def test_written_replies_come_back_as_written(tts, ear):
    """Round trip through Whisper base: what an LLM writes is said so it is heard as written."""
    for text in WRITTEN_REPLIES:
        rate, pcm = await synthesize(tts, text)
        heard = hear(ear, pcm, rate)
        assert normalized_wer(text, heard) <= 0.2, (text, heard)


async def test_streams_first_piece_before_the_rest(tts):
    t0 = time.perf_counter()
    first = None
    async for _ in tts.stream("Hello there. " + SENTENCES[0] + " " + SENTENCES[1]):
        first = first or time.perf_counter() - t0
    total = time.perf_counter() - t0
    # three pieces: the first one's audio arrives well before the last piece is synthesised
    assert first < 0.6 * total, (first, total)


async def test_audio_starts_with_its_sound_and_ends_with_its_pause(tts):
    """Kokoro opens "I can help" with ~0.1 s of silence and closes "Sure," with ~0.23 s: at a
    reply's start that is latency, at a join a pause twice a comma's. The service fits both."""
    rate, pcm = await synthesize(tts, "I can help with that.")
    assert np.argmax(np.abs(pcm) > 330) / rate < 0.04  # first sound (1 % of full scale) within 40 ms
    rate, pcm = await synthesize(tts, "Sure,")
    trailing = (len(pcm) - np.flatnonzero(np.abs(pcm) > 330)[-1]) / rate
    assert 0.09 < trailing < 0.16, trailing  # a comma's 0.1 s pause, not Kokoro's 0.23 s


async def test_hanging_up_stops_the_work_at_the_service(tts, settings):
    """Barge-in: the caller closes the stream at the first audio. The piece Kokoro is working
    on is abandoned mid-run and the ones after it never start (the service's own counts). The
    first audio is the first piece's first decoder window (cpu profile), so that piece is the
    one abandoned; with whole pieces it is the second."""
    before = (await tts.health())["pieces"]
    async with aclosing(tts.stream(LONG_REPLY)) as audio:
        async for _ in audio:
            break
    t0 = time.perf_counter()
    while True:
        after = (await tts.health())["pieces"]
        change = {k: after[k] - before[k] for k in after}
        if sum(change.values()) == 6 or time.perf_counter() - t0 > 10:
            break
        await asyncio.sleep(0.02)
    stopped_in_s = time.perf_counter() - t0
    windows = settings.tts.first_window_s is not None
    assert change == (
        {"synthesized": 0, "stopped": 1, "dropped": 5} if windows else {"synthesized": 1, "stopped": 1, "dropped": 4}
    ), change
    assert stopped_in_s < 0.5  # not after the second piece's second or more of synthesis


async def test_nothing_speakable_is_silence_not_an_error(tts):
    for text in ("   ", "🎉👍", "---"):
        assert [chunk async for chunk in tts.stream(text)] == []


async def test_unknown_voice_lists_voices(tts):
    with pytest.raises(TtsError, match=r"unknown voice 'xx_nobody'; available: .*af_heart"):
        await synthesize(tts, "Hello.", voice="xx_nobody")
    assert "bf_emma" in await tts.voices()


# Bad requests, each beside a healthy one: test_tts_bad_input.py.


async def test_chunk_joins_do_not_click(tts, settings):
    """Reply chunks are played back to back: through the agent's plugin, each starts and ends at
    silence, and at the room's 48 kHz (LiveKit's resampler) no join jumps more than the speech
    itself does."""
    from agent.plugins.kokoro_tts import HalfsecTTS

    plugin = HalfsecTTS(TtsClient(settings.tts.client_url))
    chunks = []
    for text in ("Sure, I can help with that,", "and your table is booked for eight.", "See you then!"):
        pcm = np.concatenate([np.frombuffer(ev.frame.data, np.int16) async for ev in plugin.synthesize(text)])
        edge = 24  # 1 ms at 24 kHz
        assert np.abs(pcm[:edge]).max() < 330 and np.abs(pcm[-edge:]).max() < 330  # within 1 % of full scale
        chunks.append(pcm)
    await plugin.aclose()
    joined = np.concatenate(chunks)
    room = resample(joined, 24000, 48000).astype(np.int32)
    jumps = np.abs(np.diff(room))
    joins = np.cumsum([len(c) for c in chunks[:-1]]) * 2
    near_joins = np.concatenate([jumps[max(0, j - 100) : j + 100] for j in joins])
    assert near_joins.max() <= np.percentile(jumps, 99.9), (near_joins.max(), np.percentile(jumps, 99.9))
