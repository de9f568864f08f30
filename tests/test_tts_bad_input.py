"""services/tts against bad requests, over real HTTP with Kokoro int8: each gets a clear 4xx or
the behaviour protocol.py defines, the service lives, and a healthy request sent at the same time
still gets its audio."""

import asyncio
import json

import aiohttp
import numpy as np
import pytest

from services.tts.client import TtsClient

HEALTHY = "Your appointment is on Tuesday."


def body(text: str, **fields: object) -> bytes:
    return json.dumps({"text": text, **fields}).encode()


# (request body, status, words of the error; None: audio, or none for 204)
BAD_REQUESTS: dict[str, tuple[bytes, int, str | None]] = {
    "not json": (b"not json", 400, "body"),
    "no text": (b"{}", 400, "text"),
    "empty text": (body(""), 400, "text"),
    "text not a string": (b'{"text": 42}', 400, "text"),
    "10,000 characters": (body("Hello there. " * 770), 413, "text longer than 2000 characters"),
    # past aiohttp's body limit (64 KiB) the request is refused before it is read
    "100,000 characters": (body("x" * 100_000), 413, "Maximum request body size"),
    "emoji only": (body("🎉👍🏽🔥" * 500), 204, None),  # 2,000 characters: the limit
    "control characters only": (body("\x00\x01\x07\x1b\x7f" * 100), 204, None),
    "control characters in words": (body("Hello\x00 there\x07, how\x1b are you?"), 200, None),
    "unknown voice": (body("Hi.", voice="xx_nobody"), 400, "unknown voice 'xx_nobody'; available: "),
    "speed 0": (body("Hi.", speed=0), 400, "speed"),
    "speed 100": (body("Hi.", speed=100), 400, "speed"),
    "speed negative": (body("Hi.", speed=-1), 400, "speed"),
    "speed NaN": (b'{"text": "Hi.", "speed": NaN}', 400, "speed"),
    "speed not a number": (body("Hi.", speed="fast"), 400, "speed"),
}


async def healthy_audio(url: str) -> np.ndarray:
    client = TtsClient(url)
    try:
        chunks = [np.frombuffer(data, np.int16) async for _, data in client.stream(HEALTHY)]
    finally:
        await client.aclose()
    return np.concatenate(chunks)


@pytest.mark.parametrize("kind", list(BAD_REQUESTS))
async def test_a_bad_request_is_answered_alone(settings, tts_service, kind):
    data, status, words = BAD_REQUESTS[kind]
    url = settings.tts.client_url
    async with asyncio.TaskGroup() as tasks, aiohttp.ClientSession() as http:
        healthy = tasks.create_task(healthy_audio(url))
        async with http.post(f"{url}/v1/synthesize", data=data) as resp:
            got, answer = resp.status, await resp.read()
    assert got == status, answer[:200]
    if words is not None:
        assert words in answer.decode()
    elif status == 200:  # spoken, whatever was around the words
        assert len(answer) > 0.5 * 24000 * 2
    else:
        assert answer == b""
    assert len(healthy.result()) > 0.8 * 24000  # "Your appointment is on Tuesday." is over a second
    async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as resp:
        assert resp.status == 200
