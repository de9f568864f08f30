"""No secret in a log: the real ASR service, run with HALFSEC_SERVICE_TOKEN and LIVEKIT_API_SECRET in
its environment and logging at DEBUG, answers refused and accepted requests (HTTP and a stream);
then its whole log is searched for either value."""

from __future__ import annotations

import os
import re
import sys

import aiohttp
import pytest

from services.asr.client import AsrClient, AsrError
from services.supervisor import ServiceSpec, Supervisor

from .conftest import required
from .ports import free_port

TOKEN = "svc-tok-Zq81-secret"
LIVEKIT_SECRET = "lk-secret-Wm40-value"


async def test_neither_secret_reaches_the_service_log(settings, tmp_path):
    required(settings)
    port = free_port()
    env = {
        **os.environ,
        "HALFSEC_SERVICE_TOKEN": TOKEN,
        "LIVEKIT_API_SECRET": LIVEKIT_SECRET,
        "HALFSEC_ASR__PORT": str(port),
        "HALFSEC_LOG_LEVEL": "DEBUG",  # as much as the service ever logs
    }
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "services.asr.server", "--profile", "cpu"]
    sup = Supervisor([ServiceSpec("asr", argv, f"{url}/health", 120, env)], tmp_path)
    async with sup:
        for token in (None, f"{TOKEN}-not"):
            client = AsrClient(url, token=token)
            with pytest.raises(AsrError, match="401"):
                await client.transcribe(b"\0\0" * 16000)
            with pytest.raises(AsrError, match="401"):
                await client.stream()
            await client.aclose()
        client = AsrClient(url, token=TOKEN, timeout_s=60)
        try:
            assert (await client.transcribe(b"\0\0" * 16000)).audio_s == 1.0
            stream = await client.stream()
            await stream.send(b"\0\0" * 8000)
            await stream.end()
            kinds = [event.type async for event in stream.events()]
            assert kinds[0] == "ready" and kinds[-1] == "closed"
        finally:
            await client.aclose()
        async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as resp:
            assert resp.status == 200
    log = sup.log_path("asr").read_text()
    # the log saw the requests, refused ones included (aiohttp's access log), and no secret
    assert "listening on" in log and re.search(r'"GET /v1/stream\S* HTTP/1.1" 401', log)
    assert TOKEN not in log and LIVEKIT_SECRET not in log
