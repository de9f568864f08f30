"""The agent's TTS plugin against services/tts (fake model): chunks with nothing to say are
silent, not failures LiveKit would retry; a service down or hung gets the prerendered apology."""

import asyncio
import contextlib
import time

from livekit import rtc

from agent.plugins.kokoro_tts import HalfsecTTS
from services.tts.client import TtsClient
from services.tts.protocol import SAMPLE_RATE

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


class _HungTts:
    """A service that takes the request and never answers (nor /health)."""

    async def stream(self, text: str, **_: object):
        await asyncio.Event().wait()
        yield 24000, b""

    async def answers(self, timeout_s: float) -> bool:
        await asyncio.sleep(timeout_s)
        return False

    async def aclose(self) -> None:
        pass


def _apology() -> list[rtc.AudioFrame]:
    return [rtc.AudioFrame(b"\x01\x00" * 480, SAMPLE_RATE, 1, 480)] * 5  # 100 ms, not silence


async def test_a_failing_chunk_plays_the_prerendered_apology_once_per_reply_and_raises_nothing():
    marks: list[str] = []
    tts = HalfsecTTS(TtsClient("http://127.0.0.1:9"), on_mark=marks.append, fallback=_apology)
    tts.start_reply()
    first = await frames_for(tts, "Sure,")  # connection refused: the apology instead
    later = await frames_for(tts, "here is the rest.")  # same reply: skipped
    await tts.aclose()
    assert 0.1 <= sum(f.duration for f in first) < 0.13 and any(bytes(f.data).strip(b"\0") for f in first)
    assert not any(bytes(f.data).strip(b"\0") for f in later)
    assert marks == ["tts_request", "fallback"]


async def test_a_hung_service_gets_the_apology_after_first_audio_timeout():
    tts = HalfsecTTS(_HungTts(), fallback=_apology, first_audio_timeout_s=0.6)  # type: ignore[arg-type]
    t0 = time.monotonic()
    frames = await frames_for(tts, "Sure,")
    assert 0.5 < time.monotonic() - t0 < 1.5
    assert any(bytes(f.data).strip(b"\0") for f in frames)
    assert await tts.fallback_if_down() is not None  # and a reply starting now gets it at once


class _RecordingHold:
    """LlmHold's interface: which parts of which chunks were made while vLLM was held."""

    def __init__(self, model: FakeKokoro) -> None:
        self.model = model
        self.held_over: list[list[str]] = []
        self.released = asyncio.Event()

    @contextlib.asynccontextmanager
    async def holding(self):
        made = len(self.model.made)
        yield
        self.held_over.append(self.model.made[made:])
        self.released.set()

    async def aclose(self) -> None:
        pass


async def test_only_a_replys_first_chunk_is_made_with_the_llm_held():
    model = FakeKokoro()
    hold = _RecordingHold(model)
    async with fake_service(model) as url:
        tts = HalfsecTTS(TtsClient(url), hold=hold)
        for reply in (["Sure,", "I can do that.", "Anything else?"], ["Okay."]):
            tts.start_reply()
            for chunk in reply:
                await frames_for(tts, chunk)
        await tts.aclose()
    assert hold.held_over == [["Sure,#1"], ["Okay.#1"]]  # each reply's first chunk, and only that


async def test_the_hold_ends_at_the_first_audio_not_the_end_of_the_chunk():
    model = FakeKokoro(held=True, first_windows=2)
    hold = _RecordingHold(model)
    async with fake_service(model) as url:
        tts = HalfsecTTS(TtsClient(url), hold=hold)
        tts.start_reply()
        chunk = asyncio.create_task(frames_for(tts, "Strong performances against the best teams"))
        model.release()  # the first window only
        await asyncio.wait_for(hold.released.wait(), 5)
        assert hold.held_over == [["Strong performances against the best teams#1"]]
        assert not chunk.done()  # its second window is still to come, with vLLM running
        model.release()
        assert await asyncio.wait_for(chunk, 5)
        await tts.aclose()
    assert model.made == [
        "Strong performances against the best teams#1",
        "Strong performances against the best teams#2",
    ]
