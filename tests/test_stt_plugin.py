"""The STT plugin maps the service's stream onto LiveKit's SpeechEvents, from 48 kHz frames."""

import asyncio

import numpy as np
import soundfile as sf
from livekit import rtc
from livekit.agents import stt

from agent.plugins import HalfsecSTT
from services.asr.client import AsrClient

from .conftest import normalized_wer


async def test_livekit_gets_start_interim_preflight_end_and_final(services, settings, speech):
    marks: list[str] = []
    transcripts: list[tuple[str, str]] = []
    # the ASR's endpoint ends the turn here (turn.detection "stt"): the plugin marks it
    plugin = HalfsecSTT(
        AsrClient(settings.asr.url),
        on_mark=marks.append,
        on_transcript=lambda kind, text: transcripts.append((kind, text)),
        marks_end_of_turn=True,
    )
    audio, _ = sf.read(speech[0][0], dtype="int16")
    # the room's rate: LiveKit's resampler inside RecognizeStream brings it to 16 kHz
    audio48 = np.repeat(np.concatenate([np.zeros(8000, np.int16), audio, np.zeros(16000, np.int16)]), 3)
    stream = plugin.stream()

    async def feed() -> None:
        for i in range(0, len(audio48), 960):
            chunk = audio48[i : i + 960]
            stream.push_frame(rtc.AudioFrame(chunk.tobytes(), 48000, 1, len(chunk)))
            await asyncio.sleep(0.02)
        stream.end_input()

    feeding = asyncio.create_task(feed())
    events = [ev async for ev in stream]
    await feeding
    await stream.aclose()
    await plugin.aclose()
    kinds = [e.type for e in events]
    T = stt.SpeechEventType
    for kind in (T.START_OF_SPEECH, T.INTERIM_TRANSCRIPT, T.PREFLIGHT_TRANSCRIPT, T.END_OF_SPEECH, T.FINAL_TRANSCRIPT):
        assert kind in kinds, kinds
    assert kinds.index(T.START_OF_SPEECH) < kinds.index(T.END_OF_SPEECH) < kinds.index(T.FINAL_TRANSCRIPT)
    final = next(e for e in events if e.type == T.FINAL_TRANSCRIPT)
    assert normalized_wer(speech[0][1], final.alternatives[0].text) < 0.15
    assert marks == ["end_of_turn"]
    kinds_said = [kind for kind, _ in transcripts]
    assert "preflight_transcript" in kinds_said and kinds_said[-1] == "final_transcript"
    assert transcripts[-1][1] == final.alternatives[0].text  # the tracer hears the words LiveKit gets


async def test_without_stt_turn_detection_the_plugin_leaves_the_end_of_turn_to_the_session(settings):
    marks: list[str] = []
    plugin = HalfsecSTT(AsrClient(settings.asr.url), on_mark=marks.append)  # marks_end_of_turn=False
    stream = plugin.stream()
    from services.asr.protocol import EndOfSpeech

    stream._on(EndOfSpeech(stream_s=1.0, last_voiced_s=0.8))
    assert marks == []
    await stream.aclose()
    await plugin.aclose()
