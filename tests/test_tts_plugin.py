"""The agent's TTS plugin against services/tts (fake model): chunks with nothing to say are
silent, not failures LiveKit would retry."""

from agent.plugins.kokoro_tts import HalfsecTTS
from services.tts.client import TtsClient

from .tts_fakes import FakeKokoro, fake_service


async def frames_for(tts: HalfsecTTS, text: str) -> list:
    return [ev.frame async for ev in tts.synthesize(text)]


async def test_whitespace_chunk_sends_no_request():
    marks: list[str] = []
    tts = HalfsecTTS(TtsClient("http://127.0.0.1:9"), on_mark=marks.append)  # nothing listens there
    assert await frames_for(tts, "  \n ") == []
    assert marks == []
    await tts.aclose()


async def test_emoji_only_chunk_is_a_moment_of_silence():
    model = FakeKokoro()
    async with fake_service(model) as url:
        tts = HalfsecTTS(TtsClient(url))
        frames = await frames_for(tts, "🎉👍")
        speech = await frames_for(tts, "**Done** 🎉")
        await tts.aclose()
    assert model.started == ["Done"]  # the service spoke the words and dropped the rest
    # 20 ms of silence (LiveKit's emitter pads each segment a little), where speech had 100 ms
    assert 0.02 <= sum(f.duration for f in frames) < 0.05
    assert frames and not any(bytes(f.data).strip(b"\0") for f in frames)
    assert sum(f.duration for f in speech) >= 0.1
