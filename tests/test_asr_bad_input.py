"""services/asr against bad input, over real sockets to a process of its own (a free port, a 2 s
idle timeout, Whisper tiny.en): each kind gets the clear error or the behaviour protocol.py
defines, the process lives, and a healthy call running at the same time still gets its words."""

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import numpy as np
import pytest
import soundfile as sf

from configs import Settings, load_settings
from services.asr.client import AsrClient, AsrError
from services.asr.protocol import STREAM_EVENT, STREAM_PARAMS, STREAM_PATH, TRANSCRIBE_PATH, Error, Final
from services.supervisor import Supervisor, supervisor

from .conftest import required
from .ports import free_port

IDLE_S = 2.0
MP3_SAMPLE = -1025  # its little-endian bytes are b"\xff\xfb", an MP3 frame sync


@dataclass
class Asr:
    settings: Settings
    sup: Supervisor

    @property
    def url(self) -> str:
        return self.settings.asr.client_url

    @property
    def pid(self) -> int:
        return self.sup.procs["asr"].pid

    def alive(self) -> bool:
        return self.sup.procs["asr"].poll() is None and not self.sup.restarts


@pytest.fixture(scope="module")
async def asr() -> Asr:
    # The process's environment is fixed when its spec is made: the overrides go no further.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HALFSEC_ASR__PORT", str(free_port()))
        env.setenv("HALFSEC_ASR__IDLE_TIMEOUT_S", str(IDLE_S))
        settings = load_settings("cpu")
        required(settings)
        sup = supervisor(settings, "cpu", ("asr",))
    async with sup:
        yield Asr(settings, sup)


@pytest.fixture(scope="module")
def young_man(speech) -> np.ndarray:
    """'He was not an ill disposed young man', 3 s, with a second of silence after it."""
    audio, rate = sf.read(speech[1][0], dtype="int16")
    assert rate == 16000
    return np.concatenate([audio, np.zeros(16000, np.int16)])


def heard(text: str) -> bool:
    return "young man" in text.lower()


async def streamed_text(url: str, audio: np.ndarray, frame: int = 320, first: int | None = None) -> str:
    """Stream `audio` in real time (`first`: every frame's first sample set to it); the finals'
    text. Any error event fails the test: a healthy stream must get none."""
    client = AsrClient(url)
    try:
        stream = await client.stream()
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        async def send() -> None:
            for i in range(0, len(audio), frame):
                chunk = audio[i : i + frame].copy()
                if first is not None:
                    chunk[0] = first
                await stream.send(chunk.tobytes())
                await asyncio.sleep(max(0.0, t0 + (i + frame) / 16000 - loop.time()))
            await stream.end()

        sending = asyncio.create_task(send())
        events = [e async for e in stream.events()]
        await sending
    finally:
        await client.aclose()
    assert not [e for e in events if isinstance(e, Error)], events
    return " ".join(e.text for e in events if isinstance(e, Final))


async def posted(url: str, body: bytes, **params: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.post(f"{url}{TRANSCRIBE_PATH}", data=body, params=params) as resp:
        text = await resp.text()
        return resp.status, text


# -- a frame whose first bytes look like a file header is still PCM ----------------------------


async def test_pcm_starting_like_an_mp3_header_is_transcribed(asr, young_man):
    body = young_man.copy()
    body[0] = MP3_SAMPLE
    assert body.tobytes()[:2] == b"\xff\xfb"
    client = AsrClient(asr.url)
    try:
        assert heard((await client.transcribe(body.tobytes())).text)
    finally:
        await client.aclose()
    # every frame of the stream opens with the same sample: none is dropped
    assert heard(await streamed_text(asr.url, young_man, frame=3200, first=MP3_SAMPLE))


async def test_a_wav_file_sent_as_pcm_is_its_samples_after_a_header_of_noise(asr, speech):
    """Defined, not refused: the 44-byte header is 22 samples of noise, the rest is the speech."""
    wav = speech[1][0].read_bytes()
    assert wav.startswith(b"RIFF")
    client = AsrClient(asr.url)
    try:
        assert heard((await client.transcribe(wav)).text)
    finally:
        await client.aclose()
    samples = np.frombuffer(wav[: len(wav) // 2 * 2], dtype="<i2")
    assert heard(await streamed_text(asr.url, np.concatenate([samples, np.zeros(16000, np.int16)])))


# -- the stream: each bad kind on its own socket, beside a healthy call ---------------------------

Send = Callable[[aiohttp.ClientWebSocketResponse], Awaitable[None]]


def then_end(*frames: bytes | str) -> Send:
    async def send(ws: aiohttp.ClientWebSocketResponse) -> None:
        for frame in frames:
            await (ws.send_str(frame) if isinstance(frame, str) else ws.send_bytes(frame))
        await ws.send_str('{"type": "end"}')

    return send


def only(*frames: bytes) -> Send:
    async def send(ws: aiohttp.ClientWebSocketResponse) -> None:
        for frame in frames:
            await ws.send_bytes(frame)

    return send


MAX_FRAME = 32000  # bytes: asr.max_frame_s (1 s) of 16 kHz PCM16 (checked in the test)

# (what is sent, query, words of the error, fatal, close code); None: no error event at all
BAD_STREAMS: dict[str, tuple[Send, dict[str, str], str | None, bool, int]] = {
    "odd-length frame": (then_end(b"\x01\x02\x03"), {}, "length is odd", False, 1000),
    "empty frame": (then_end(b""), {}, "empty", False, 1000),
    "text frame": (then_end("hello"), {}, "unknown message", False, 1000),
    "json but no message": (then_end('{"type": "start"}', "[1, 2]"), {}, "unknown message", False, 1000),
    "frame over the limit": (only(bytes(2 * MAX_FRAME)), {}, f"at most {MAX_FRAME}", True, 1009),
    # past aiohttp's own limit (4x ours) the socket is closed before the frame is read
    "frame far over the limit": (only(bytes(5 * MAX_FRAME)), {}, None, False, 1009),
    "wrong sample rate": (only(), {"sample_rate": "48000"}, "sample_rate must be 16000", True, 1008),
    "two channels": (only(), {"channels": "2"}, "channels must be 1", True, 1008),
    "not pcm_s16le": (only(), {"encoding": "opus"}, "encoding must be pcm_s16le", True, 1008),
    "never closes": (only(), {}, f"no message for {IDLE_S:g} s", True, 1008),
}


async def bad_stream(url: str, send: Send, query: dict[str, str]) -> tuple[list, int | None]:
    """The events a bad client gets until the service closes its socket, and the close code."""
    async with (
        asyncio.timeout(IDLE_S + 15),
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{url}{STREAM_PATH}", params={**STREAM_PARAMS, **query}) as ws,
    ):
        await send(ws)
        events = [STREAM_EVENT.validate_json(msg.data) async for msg in ws if msg.type == aiohttp.WSMsgType.TEXT]
        return events, ws.close_code


@pytest.mark.parametrize("kind", list(BAD_STREAMS))
async def test_a_bad_stream_is_answered_alone(asr, young_man, kind):
    assert int(asr.settings.asr.max_frame_s * 16000 * 2) == MAX_FRAME
    send, query, words, fatal, code = BAD_STREAMS[kind]
    async with asyncio.TaskGroup() as tasks:  # a bad client's failure cancels the healthy call too
        healthy = tasks.create_task(streamed_text(asr.url, young_man))
        await asyncio.sleep(0.5)  # the healthy call is mid-utterance when the bad one comes
        events, close_code = await bad_stream(asr.url, send, query)
    errors = [e for e in events if isinstance(e, Error)]
    if words is None:
        assert errors == []
    else:
        assert errors and all(words in e.message and e.fatal == fatal for e in errors), events
    assert close_code == code
    if not fatal and words is not None:  # the stream went on to its end
        assert events[-1].type == "closed"
    assert heard(healthy.result())
    assert asr.alive()


# -- one-shot HTTP -------------------------------------------------------------------------------

TOO_LONG = int(60.0 * 16000 * 2)  # asr.max_audio_s of PCM16 (checked in the test)

# (body, query, status, words of the error; None: a Transcript)
BAD_BODIES: dict[str, tuple[bytes, dict[str, str], int, str | None]] = {
    "empty": (b"", {}, 400, "empty body"),
    "odd length": (b"not audio", {}, 400, "length is odd"),
    # text of even length is samples too: transcribed as the noise it is
    "text of even length": (b"this is not audio!" * 100, {}, 200, None),
    "just over max_audio_s": (bytes(TOO_LONG + 2), {}, 400, "audio longer than 60 s"),
    "huge": (bytes(4 * TOO_LONG), {}, 413, "Maximum request body size"),
    "wrong sample rate": (bytes(3200), {"sample_rate": "44100"}, 400, "sample_rate must be 16000"),
}


@pytest.mark.parametrize("kind", list(BAD_BODIES))
async def test_a_bad_body_is_answered_alone(asr, young_man, kind):
    assert int(asr.settings.asr.max_audio_s * 16000 * 2) == TOO_LONG
    body, query, status, words = BAD_BODIES[kind]
    client = AsrClient(asr.url)
    try:
        async with asyncio.TaskGroup() as tasks:
            healthy = tasks.create_task(client.transcribe(young_man.tobytes()))
            got, text = await posted(asr.url, body, **query)
        assert got == status, text
        if words is not None:
            assert words in text
        assert heard(healthy.result().text)
    finally:
        await client.aclose()
    assert asr.alive()


async def test_the_client_raises_the_services_error(asr):
    client = AsrClient(asr.url)
    try:
        with pytest.raises(AsrError, match="ASR service 400: length is odd"):
            await client.transcribe(b"\x01")
        with pytest.raises(AsrError, match="ASR service 413"):  # aiohttp's plain-text refusal
            await client.transcribe(bytes(4 * TOO_LONG))
    finally:
        await client.aclose()


# -- many clients coming and going -----------------------------------------------------------


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


async def health(http: aiohttp.ClientSession, url: str) -> dict:
    async with http.get(f"{url}/health") as resp:
        return dict(await resp.json())


async def test_a_thousand_connects_and_disconnects_leak_nothing(asr, young_man):
    """A third close cleanly, a third drop the connection without a close, a third close before
    reading anything; afterwards the process holds no more descriptors, threads or tasks than before."""

    async def once(http: aiohttp.ClientSession, i: int) -> None:
        ws = await http.ws_connect(f"{asr.url}{STREAM_PATH}", params=STREAM_PARAMS)
        if i % 3 == 2:
            await ws.close()
            return
        assert (await ws.receive_json())["type"] == "ready"
        if i % 3 == 0:
            await ws.send_bytes(bytes(640))
            await ws.close()
        else:
            ws._response.connection.transport.abort()  # no close handshake

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        batch = 16  # under asr.max_streams: a refusal would be a different test
        # a first batch: what the process builds once (its VAD models, their threads) is built
        await asyncio.gather(*(once(http, i) for i in range(batch)))
        await asyncio.sleep(0.5)
        fds, n_threads, tasks = open_fds(asr.pid), threads(asr.pid), (await health(http, asr.url))["tasks"]
        for start in range(0, 1000, batch):
            await asyncio.gather(*(once(http, i) for i in range(start, min(start + batch, 1000))))
        async with asyncio.timeout(10):
            while (await health(http, asr.url))["streams"]:
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the server's side of the last sockets
        assert open_fds(asr.pid) <= fds + 4
        assert threads(asr.pid) <= n_threads + 2
        assert (await health(http, asr.url))["tasks"] <= tasks + 2
    assert heard(await streamed_text(asr.url, young_man))
    assert asr.alive()
