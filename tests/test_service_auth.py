"""HALFSEC_SERVICE_TOKEN: exposed binds need it, the services and an exposed dashboard ask for it
(401 without it or with a wrong one, /health open), the clients send it, and the calls' words
stay off /metrics and off a dashboard page that has not shown it. Over real loopback HTTP and
WebSocket, around fake models."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import SecretStr

from agent.access import dashboard_access
from agent.session import build_llm
from configs import Settings, SettingsError, load_settings
from configs.settings import is_loopback
from latency import Budget, build_record
from latency.dashboard import Dashboard, make_app
from latency.metrics import TurnMetrics
from services.asr import server as asr_server
from services.asr.client import AsrClient, AsrError
from services.asr.protocol import Ready, Transcript
from services.llm.launch import vllm_command, vllm_env
from services.tts.client import TtsClient, TtsError
from services.tts.server import make_app as tts_app

from .test_dashboard import FAST_MARKS
from .tts_fakes import FakeKokoro

TOKEN = "tok-7Hq2-right"
WRONG = "tok-7Hq2-wrong"
WORDS = "my card number is zebra quartz"  # a transcript nothing else would contain


def with_token(settings: Settings, token: str | None = TOKEN) -> Settings:
    return settings.model_copy(update={"service_token": SecretStr(token) if token else None})


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ("HALFSEC_ASR__HOST", "asr.host"),
        ("HALFSEC_TTS__HOST", "tts.host"),
        ("HALFSEC_LLM__HOST", "llm.host"),
        ("HALFSEC_LATENCY__DASHBOARD_HOST", "latency.dashboard_host"),
    ],
)
def test_an_exposed_bind_needs_the_token(monkeypatch, env, key):
    monkeypatch.delenv("HALFSEC_SERVICE_TOKEN", raising=False)
    monkeypatch.setenv(env, "0.0.0.0")
    with pytest.raises(SettingsError, match=rf"{key} is 0\.0\.0\.0, not a loopback address: set HALFSEC_SERVICE_TOKEN"):
        load_settings("cpu")
    monkeypatch.setenv("HALFSEC_SERVICE_TOKEN", TOKEN)
    assert load_settings("cpu").token() == TOKEN


def test_loopback_binds_need_no_token(monkeypatch):
    monkeypatch.delenv("HALFSEC_SERVICE_TOKEN", raising=False)
    monkeypatch.setenv("HALFSEC_ASR__HOST", "localhost")
    monkeypatch.setenv("HALFSEC_TTS__HOST", "::1")
    monkeypatch.setenv("HALFSEC_LATENCY__DASHBOARD_HOST", "127.0.0.2")
    assert load_settings("cpu").service_token is None
    monkeypatch.setenv("HALFSEC_SERVICE_TOKEN", "")  # set but empty: no token
    assert load_settings("cpu").token() is None
    assert [is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "voice.example.com")] == [False] * 4


def test_the_settings_never_show_the_token(monkeypatch):
    monkeypatch.setenv("HALFSEC_SERVICE_TOKEN", TOKEN)
    settings = load_settings("cpu")
    for shown in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert TOKEN not in shown


# --- ASR over HTTP and WebSocket ------------------------------------------------------------------


class FakeWhisper:
    name = "fake-whisper"

    def transcribe(self, audio: np.ndarray) -> Transcript:
        return Transcript(text="hello", audio_s=len(audio) / 16000)

    def decode(self, audio: np.ndarray, **_: object) -> None:
        raise AssertionError("no stream decodes in these tests")


@asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """`app` on a free loopback port, as `services.http.serve` runs it."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def asr_url(settings) -> AsyncIterator[str]:
    async with served(asr_server.make_app(FakeWhisper(), with_token(settings))) as url:  # type: ignore[arg-type]
        yield url


@pytest.mark.parametrize("token", [None, WRONG])
async def test_asr_refuses_a_missing_or_wrong_token(asr_url, token):
    client = AsrClient(asr_url, token=token)
    try:
        with pytest.raises(AsrError, match="ASR service 401: missing or wrong bearer token"):
            await client.transcribe(b"\0\0" * 1600)
        with pytest.raises(AsrError, match=r"refused the stream \(401\)"):
            await client.stream()
    finally:
        await client.aclose()


async def test_asr_takes_the_right_token_and_leaves_health_open(asr_url):
    client = AsrClient(asr_url, token=TOKEN)
    try:
        assert (await client.transcribe(b"\0\0" * 1600)).text == "hello"
        stream = await client.stream()
        first = await anext(stream.events())
        assert isinstance(first, Ready) and first.model == "fake-whisper"
        await stream.aclose()
    finally:
        await client.aclose()
    async with aiohttp.ClientSession() as http, http.get(f"{asr_url}/health") as resp:
        assert resp.status == 200 and (await resp.json())["model"] == "fake-whisper"


async def test_without_a_token_nothing_is_asked(settings):
    async with served(asr_server.make_app(FakeWhisper(), with_token(settings, None))) as url:  # type: ignore[arg-type]
        client = AsrClient(url)
        try:
            assert (await client.transcribe(b"\0\0" * 1600)).text == "hello"
        finally:
            await client.aclose()


# --- TTS ------------------------------------------------------------------------------------------


async def test_tts_asks_for_the_token(settings):
    async with served(tts_app(FakeKokoro(), with_token(settings))) as url:
        for token in (None, WRONG):
            client = TtsClient(url, token=token)
            with pytest.raises(TtsError, match="TTS service 401"):
                _ = [chunk async for chunk in client.stream("Hello there.")]
            await client.aclose()
        client = TtsClient(url, token=TOKEN)
        try:
            assert sum([len(pcm) async for _, pcm in client.stream("Hello there.")]) > 0
            assert "af_heart" in await client.voices()
        finally:
            await client.aclose()
        async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as resp:
            assert resp.status == 200  # no token


# --- dashboard ------------------------------------------------------------------------------------


def said(session_id: str = "call-1") -> dict:
    return build_record(session_id, 1, FAST_MARKS, 500.0, user_text=WORDS, agent_text=f"I heard {WORDS}").to_json()


@pytest.fixture
def dashboard(tmp_path) -> Dashboard:
    (tmp_path / "turns.jsonl").write_text(json.dumps(said()) + "\n")
    board = Dashboard(tmp_path, Budget())
    board.poll()
    return board


async def test_an_exposed_dashboard_asks_for_the_token(settings, dashboard):
    app = make_app(dashboard, **dashboard_access(with_token(settings), "0.0.0.0"))
    async with TestClient(TestServer(app)) as client:
        for path in ("/", "/api/state", "/api/events", "/metrics"):
            assert (await client.get(path)).status == 401, path
            assert (await client.get(path, headers={"Authorization": f"Bearer {WRONG}"})).status == 401, path
        refused = await client.get("/api/state", headers={"Authorization": TOKEN})  # no scheme
        assert refused.status == 401 and "bearer token" in (await refused.json())["error"]
        assert (await client.get("/health")).status == 200
        ok = await client.get("/api/state", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status == 200 and (await ok.json())["turns"][0]["user_text"] == WORDS


def test_an_exposed_dashboard_without_a_token_is_refused(settings):
    assert dashboard_access(with_token(settings, None), "127.0.0.1") == {}  # loopback: open, as before
    with pytest.raises(SettingsError, match="0.0.0.0 is not a loopback address: set HALFSEC_SERVICE_TOKEN"):
        dashboard_access(with_token(settings, None), "0.0.0.0")


async def test_the_words_go_only_to_requests_allowed_them(settings, dashboard):
    # The transcript rule on its own (no middleware in front): what an unproven request gets.
    access = dashboard_access(with_token(settings), "0.0.0.0")
    app = make_app(dashboard, show_transcripts=access["show_transcripts"])
    async with TestClient(TestServer(app)) as client:
        state = await (await client.get("/api/state")).text()
        events = await client.get("/api/events")
        first = (await events.content.readuntil(b"\n\n")).decode()
        events.close()
        assert "zebra" not in state and "zebra" not in first and '"v2v_ms": 345.0' in first
        with_it = await client.get("/api/state", headers={"Authorization": f"Bearer {TOKEN}"})
        assert (await with_it.json())["turns"][0]["agent_text"] == f"I heard {WORDS}"
    async with TestClient(TestServer(make_app(dashboard))) as client:  # on loopback
        assert (await (await client.get("/api/state")).json())["turns"][0]["user_text"] == WORDS


async def test_metrics_carry_no_transcript(dashboard):
    metrics = TurnMetrics(CollectorRegistry())
    metrics.observe(said())
    text = generate_latest(metrics.registry).decode()
    assert "halfsec_turns_total 1.0" in text and "zebra" not in text
    async with TestClient(TestServer(make_app(dashboard))) as client:
        served_text = await (await client.get("/metrics")).text()
        assert "halfsec_turns_total 1.0" in served_text and "zebra" not in served_text


# --- vLLM -----------------------------------------------------------------------------------------


def test_vllm_gets_the_token_in_its_environment_only(settings, monkeypatch):
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    secured = with_token(settings)
    assert vllm_env(secured)["VLLM_API_KEY"] == TOKEN
    assert TOKEN not in " ".join(vllm_command(secured))  # vLLM logs its arguments
    assert "VLLM_API_KEY" not in vllm_env(with_token(settings, None))


def test_the_agent_sends_the_token_to_vllm(settings):
    assert build_llm(with_token(settings))._client.api_key == TOKEN
    assert build_llm(with_token(settings, None))._client.api_key == "halfsec-local"
