"""The STT plugin maps the service's stream onto LiveKit's SpeechEvents, from 48 kHz frames."""

import asyncio

import numpy as np
import soundfile as sf
from livekit import rtc
from livekit.agents import stt

from agent.plugins import HalfsecSTT
from services.asr.client import AsrClient

from .conftest import normalized_wer


async def test_livekit_gets_start_interim_preflight_end_and_final(asr_service, settings, speech):
    marks: list[str] = []
    transcripts: list[tuple[str, str]] = []
    # the ASR's endpoint ends the turn here (turn.detection "stt"): the plugin marks it
    plugin = HalfsecSTT(
        AsrClient(settings.asr.client_url),
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
    plugin = HalfsecSTT(AsrClient(settings.asr.client_url), on_mark=marks.append)  # marks_end_of_turn=False
    stream = plugin.stream()
    from services.asr.protocol import EndOfSpeech

    stream._on(EndOfSpeech(stream_s=1.0, last_voiced_s=0.8))
    assert marks == []
    await stream.aclose()
    await plugin.aclose()


async def test_a_stream_closed_for_idleness_is_reopened_without_an_outage():
    """A muted caller sends nothing; the service closes the stream (reason "idle") every
    asr.idle_timeout_s. The plugin opens the next one at once, as no failure: not LiveKit's
    retries (3, then the call's STT is dead), no outage, and the first words after it are heard."""
    from aiohttp import WSMsgType, web
    from aiohttp.test_utils import TestServer

    from services.asr.protocol import STREAM_PATH, Closed, Error, Final, Ready

    opened = 0
    IDLE_CLOSES = 5  # a muted minute or more: more than LiveKit's retries

    async def fake_asr(request: web.Request) -> web.WebSocketResponse:
        nonlocal opened
        opened += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(Ready(model="fake").model_dump_json())
        if opened <= IDLE_CLOSES:  # what services/asr does after asr.idle_timeout_s of nothing
            await ws.send_str(Error(message="no message for 30 s", fatal=True, reason="idle").model_dump_json())
            await ws.close(code=1008)
            return ws
        heard = False
        async for msg in ws:
            if msg.type == WSMsgType.BINARY and not heard:
                heard = True
                final = Final(text="hello", audio_s=0.5, after_endpoint_ms=1.0, reused_preflight=False)
                await ws.send_str(final.model_dump_json())
            elif msg.type == WSMsgType.TEXT:  # end
                await ws.send_str(Closed(received_s=0.5, decoded_s=0.5, compute_s=0.1).model_dump_json())
                break
        return ws

    app = web.Application()
    app.router.add_get(STREAM_PATH, fake_asr)
    server = TestServer(app)
    await server.start_server()
    plugin = HalfsecSTT(AsrClient(str(server.make_url(""))))  # no outages survived: one would raise
    stream = plugin.stream()
    try:
        async with asyncio.timeout(10):
            while opened <= IDLE_CLOSES:
                await asyncio.sleep(0.01)
            stream.push_frame(rtc.AudioFrame(bytes(960 * 2), 48000, 1, 960))
            stream.end_input()
            events = [ev async for ev in stream]
    finally:
        await stream.aclose()
        await plugin.aclose()
        await server.close()
    finals = [e.alternatives[0].text for e in events if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT]
    assert finals == ["hello"] and opened == IDLE_CLOSES + 1 and plugin.outage is None
