"""What of the room path can run without a LiveKit server: env checks, tokens, registration."""

import os
from types import SimpleNamespace

import pytest
from livekit import api

from agent.admission import Admission, call_capacity
from agent.worker import WorkerConfigError, admit, check_env, entrypoint, make_server
from services.plan import current_plan
from tests.ports import free_port


def test_missing_livekit_env_is_a_clear_error():
    with pytest.raises(WorkerConfigError, match="LIVEKIT_API_KEY, LIVEKIT_API_SECRET not set"):
        check_env({"LIVEKIT_URL": "ws://localhost:7880"})
    check_env({"LIVEKIT_URL": "ws://x", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s"})


def test_server_registers_our_entrypoint(settings):
    server = make_server(settings)
    assert server._entrypoint_fnc is entrypoint


class _Request:
    """What `admit` uses of LiveKit's JobRequest."""

    def __init__(self) -> None:
        self.room = SimpleNamespace(name="support-7")
        self.answer: str | None = None

    async def accept(self) -> None:
        self.answer = "accepted"

    async def reject(self, *, terminate: bool = True) -> None:
        self.answer = "terminated" if terminate else "rejected"


async def test_a_full_worker_reports_it_and_refuses_the_next_call(settings, caplog):
    """cpu profile: two calls. The load LiveKit reads reaches the worker's threshold at the
    second call, and a job request that comes anyway is refused, for another worker to take."""
    settings = settings.model_copy(update={"worker": settings.worker.model_copy(update={"max_calls": 2})})
    server = make_server(settings)
    admission = Admission(call_capacity(settings))
    threshold = server._load_threshold
    for active, full in ((0, False), (1, False), (2, True)):
        load = server._load_fnc(SimpleNamespace(active_jobs=[object()] * active))
        assert (load >= threshold) is full and (load > threshold) is full, (active, load, threshold)
        req = _Request()
        await admit(admission, SimpleNamespace(active_jobs=[object()] * active), req)
        assert req.answer == ("rejected" if full else "accepted")
    assert "refusing the call in room support-7: full: 2 of 2 calls in progress" in caplog.text


def test_call_capacity_comes_from_settings_else_the_vram_plan(monkeypatch):
    from configs import load_settings

    assert call_capacity(load_settings("cpu")) == 2  # measured on 2 cores (configs/cpu.yaml)
    monkeypatch.setenv("HALFSEC_GPU__GPU_GB", "24")  # the plan without asking nvidia-smi
    gpu = load_settings("gpu-24gb")
    assert gpu.worker.max_calls is None and call_capacity(gpu) == current_plan(gpu).calls >= 1
    with pytest.raises(ValueError, match="at least 1"):
        Admission(0)


def test_caller_token_grants_the_room():
    token = (
        api.AccessToken("devkey", "secret-secret-secret-secret-0123")
        .with_identity("caller-1")
        .with_grants(api.VideoGrants(room_join=True, room="support-42"))
        .to_jwt()
    )
    claims = api.TokenVerifier("devkey", "secret-secret-secret-secret-0123").verify(token)
    assert claims.identity == "caller-1"
    assert claims.video.room == "support-42" and claims.video.room_join


async def test_worker_serves_metrics_over_every_rooms_turns(tmp_path, monkeypatch, settings):
    """Job processes write turns per room; the worker's /metrics counts them all."""
    import asyncio

    import aiohttp

    from agent.worker import RUNS_ENV, rooms_dir, watch_rooms
    from latency import TurnLog, build_record
    from tests.ports import free_port

    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    port = free_port()
    settings = settings.model_copy(update={"latency": settings.latency.model_copy(update={"dashboard_port": port})})
    async with watch_rooms(settings), aiohttp.ClientSession() as http:
        for room in ("support-1", "support-2"):  # as two job processes would
            with TurnLog(rooms_dir() / room / "turns.jsonl") as log:
                log.write(build_record(room, 1, {"last_voiced": 0.0, "first_frame_out": 0.4}, 500.0))
        body = ""
        for _ in range(40):  # the follower polls every 0.25 s
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                body = await resp.text()
            if "halfsec_turns_total 2.0" in body:
                break
            await asyncio.sleep(0.1)
    assert "halfsec_turns_total 2.0" in body
    assert "halfsec_turn_v2v_seconds_count 2.0" in body


async def test_prewarm_makes_the_vad_and_the_tts_fallback_once_per_process(monkeypatch):
    """LiveKit runs prewarm in each job process before it takes a call (synchronously, before the
    process's event loop: here in a thread beside the test's)."""
    import asyncio
    import gc
    from urllib.parse import urlparse

    from agent.fallback import kept
    from agent.session import build_vad
    from agent.worker import PROFILE_ENV, prewarm
    from tests.tts_fakes import FakeKokoro, fake_service

    backend = FakeKokoro()
    async with fake_service(backend) as url:
        monkeypatch.setenv(PROFILE_ENV, "cpu")
        monkeypatch.setenv("HALFSEC_TTS__PORT", str(urlparse(url).port))
        proc = SimpleNamespace(userdata={})
        gc.unfreeze()  # (the suite's own fixture froze the heap before this test)
        await asyncio.to_thread(prewarm, proc)
        assert gc.get_freeze_count() > 0  # what it made is out of the collector's way
        settings = proc.userdata["settings"]
        assert settings.profile == "cpu"
        assert build_vad(settings) is build_vad(settings.model_copy())  # every call's session shares it
        assert kept(settings.tts.fallback_text, url)  # before any call: the TTS's apology
        await asyncio.to_thread(prewarm, SimpleNamespace(userdata={}))  # a second prewarm makes nothing
    assert backend.finished == [settings.tts.fallback_text]


async def test_prewarm_goes_on_without_a_tts(monkeypatch, caplog):
    """A TTS down or hung while the process starts: logged, and the first call makes the audio."""
    import asyncio

    from agent.fallback import keep_tts_fallback, kept
    from agent.worker import PROFILE_ENV, prewarm
    from configs import load_settings
    from tests.tts_fakes import FakeKokoro, fake_service

    monkeypatch.setenv(PROFILE_ENV, "cpu")
    monkeypatch.setenv("HALFSEC_TTS__PORT", str(free_port()))
    proc = SimpleNamespace(userdata={})
    await asyncio.to_thread(prewarm, proc)
    assert proc.userdata["settings"].tts.port == int(os.environ["HALFSEC_TTS__PORT"])
    assert "could not prerender the fallback" in caplog.text and "Connect call failed" in caplog.text
    assert not kept(proc.userdata["settings"].tts.fallback_text, proc.userdata["settings"].tts.client_url)

    async with fake_service(FakeKokoro(held=True)) as url:  # takes the request, never answers
        from urllib.parse import urlparse

        monkeypatch.setenv("HALFSEC_TTS__PORT", str(urlparse(url).port))
        assert not await asyncio.to_thread(keep_tts_fallback, load_settings("cpu"), 0.3)
    assert "the TTS made no fallback audio within 0.3 s: the first call makes it" in caplog.text


def test_agent_name_is_the_setting_unless_livekit_names_it(settings):
    from agent.worker import agent_name

    assert agent_name(settings, {}) == "halfsec"
    assert agent_name(settings, {"LIVEKIT_AGENT_NAME": "front-desk"}) == "front-desk"
    automatic = settings.model_copy(update={"worker": settings.worker.model_copy(update={"agent_name": ""})})
    assert agent_name(automatic, {}) == ""  # automatic dispatch: a job in every room


def test_the_server_drains_for_worker_drain_timeout_s(settings, monkeypatch):
    monkeypatch.delenv("LIVEKIT_AGENT_NAME", raising=False)
    settings = settings.model_copy(update={"worker": settings.worker.model_copy(update={"drain_timeout_s": 42.0})})
    server = make_server(settings)
    assert server._drain_timeout == 42.0
    assert server._agent_name == "halfsec"


async def test_a_call_gets_its_persona_and_its_turns_reach_the_file_and_the_room(settings, tmp_path, monkeypatch):
    """The entrypoint's wiring, with the room (which cannot exist here) and the session it would
    drive stood in for: the job's persona shapes the session's settings; each turn record goes to
    turns.jsonl and, the same, to the room's data channel."""
    import json

    from agent import worker
    from latency.turnlog import read_turns
    from tests.test_turn_feed import Participant

    async def nothing(*args, **kwargs) -> None:
        pass

    built = {}

    def build(settings, tracer):
        built.update(settings=settings, tracer=tracer)
        return SimpleNamespace(start=nothing), SimpleNamespace(aclose_clients=nothing)

    monkeypatch.setattr(worker, "build_session", build)
    monkeypatch.setenv(worker.RUNS_ENV, str(tmp_path))
    participant, shutdown = Participant(), []
    ctx = SimpleNamespace(
        proc=SimpleNamespace(userdata={"settings": settings}),
        job=SimpleNamespace(
            metadata=json.dumps({"greeting": "Hi, Ada here.", "system_prompt": "You are Ada."}),
            room=SimpleNamespace(metadata=json.dumps({"greeting": "the room's, not used"})),
        ),
        room=SimpleNamespace(name="support-9", local_participant=participant),
        add_shutdown_callback=shutdown.append,
        connect=nothing,
    )
    await worker.entrypoint(ctx)
    call = built["settings"]
    assert (call.agent.greeting, call.llm.system_prompt, call.tts.voice) == (
        "Hi, Ada here.",
        "You are Ada.",
        "af_heart",
    )

    tracer = built["tracer"]
    tracer.mark("speech_start")
    tracer.mark("end_of_turn")
    for callback in shutdown:  # the call ends: its open turn is written, published, and all closed
        await callback()
    [path] = list((tmp_path / "rooms").glob("support-9-*/turns.jsonl"))
    written = list(read_turns(path))
    assert len(written) == 1 and written[0]["session_id"] == "support-9"
    assert [sent for sent, _, _ in participant.sent] == written


def test_a_taken_dashboard_port_is_one_clear_error_before_livekit_starts(settings):
    import socket

    from agent.worker import check_dashboard_port

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = settings.model_copy(update={"latency": settings.latency.model_copy(update={"dashboard_port": port})})
        with pytest.raises(WorkerConfigError, match=f"latency.dashboard_port {port} on 127.0.0.1 is taken"):
            check_dashboard_port(busy)
    check_dashboard_port(busy)  # free again
