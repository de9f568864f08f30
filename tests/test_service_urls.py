"""Services on another box: `asr.url`, `tts.url` and `llm.base_url` send the clients there, and
this box then starts none of its own. Real services, bound to another loopback address and port
than the defaults, answer a real call whose own host:port settings lead nowhere."""

from __future__ import annotations

import pytest

from agent.sim.call import run_call
from agent.sim.speech import call_turns
from configs import SettingsError, load_settings
from services.supervisor import supervisor
from tests.conftest import required
from tests.ports import free_port

ELSEWHERE = "127.0.0.2"  # loopback, so no token is needed; not the default 127.0.0.1


def test_a_service_elsewhere_is_left_to_that_box(monkeypatch):
    monkeypatch.setenv("HALFSEC_SERVICE_TOKEN", "t0ken")
    monkeypatch.setenv("HALFSEC_ASR__URL", "http://gpu-box:9101/")
    monkeypatch.setenv("HALFSEC_LLM__BASE_URL", "https://gpu-box/v1")
    settings = load_settings("cpu")
    assert settings.asr.client_url == "http://gpu-box:9101"  # no trailing slash
    assert settings.llm.client_base_url == "https://gpu-box/v1"
    assert settings.llm.server_url == "https://gpu-box"  # its /health, asked when a first token is late
    assert settings.tts.client_url == settings.tts.local_url == "http://127.0.0.1:8102"
    assert [s.name for s in supervisor(settings, "cpu").specs] == ["tts"]


def test_a_wildcard_bind_is_reached_on_loopback(monkeypatch):
    monkeypatch.setenv("HALFSEC_SERVICE_TOKEN", "t0ken")
    monkeypatch.setenv("HALFSEC_ASR__HOST", "0.0.0.0")
    monkeypatch.setenv("HALFSEC_TTS__HOST", "::")
    settings = load_settings("cpu")
    assert settings.asr.local_url == "http://127.0.0.1:8101"
    assert settings.tts.local_url == "http://[::1]:8102"


def test_a_service_on_another_host_needs_the_token(monkeypatch):
    monkeypatch.delenv("HALFSEC_SERVICE_TOKEN", raising=False)
    monkeypatch.setenv("HALFSEC_TTS__URL", "http://gpu-box:8102")
    with pytest.raises(SettingsError, match="tts.url is on gpu-box: set HALFSEC_SERVICE_TOKEN"):
        load_settings("cpu")
    monkeypatch.setenv("HALFSEC_TTS__URL", f"http://{ELSEWHERE}:8102")  # loopback: nothing to guard
    assert load_settings("cpu").tts.elsewhere == f"http://{ELSEWHERE}:8102"


@pytest.fixture(scope="module")
async def speech_services_elsewhere():
    """ASR and TTS as another box would run them: another address, other ports."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("ASR", "TTS"):
            env.setenv(f"HALFSEC_{name}__HOST", ELSEWHERE)
            env.setenv(f"HALFSEC_{name}__PORT", str(free_port()))
        there = load_settings("cpu")
        required(there)
        sup = supervisor(there, "cpu", ("asr", "tts"))
    async with sup:
        yield there


async def test_a_call_through_services_on_another_host(services, settings, speech_services_elsewhere, tmp_path):
    there = speech_services_elsewhere
    nowhere = free_port()  # this box's own addresses lead nowhere: only the URLs can answer
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HALFSEC_ASR__URL", there.asr.local_url)
        env.setenv("HALFSEC_TTS__URL", there.tts.local_url)
        env.setenv("HALFSEC_LLM__BASE_URL", settings.llm.client_base_url)  # the session's vLLM
        for name in ("ASR", "TTS", "LLM"):
            env.setenv(f"HALFSEC_{name}__PORT", str(nowhere))
        here = load_settings("cpu")
    assert supervisor(here, "cpu").specs == []
    result = await run_call(here, call_turns(here)[2:3], tmp_path)
    (turn,) = result.voiced_turns()
    assert turn["user_text"] and turn["agent_text"] and turn["v2v_ms"] > 0
