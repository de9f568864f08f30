"""The supervisor, with real processes: a service that cannot start, and one that dies later."""

import asyncio
import sys
import time

import pytest

from services.supervisor import ServiceError, ServiceSpec, Supervisor
from tests.ports import free_port


async def test_supervisor_reports_a_service_that_dies_on_start(tmp_path):
    spec = ServiceSpec(
        "broken",
        [sys.executable, "-c", "import sys; print('cannot load model'); sys.exit(3)"],
        "http://127.0.0.1:9/health",
        startup_timeout_s=20,
    )
    sup = Supervisor([spec], tmp_path)
    with pytest.raises(ServiceError, match=r"broken exited with code 3(.|\n)*cannot load model"):
        await sup.start()
    assert sup.procs == {}


async def test_supervisor_restarts_a_service_that_dies(tmp_path):
    # a tiny real HTTP service that answers /health, then dies after a second
    code = (
        "import http.server, threading, os, sys;"
        "H=type('H',(http.server.BaseHTTPRequestHandler,),{'do_GET':lambda s:(s.send_response(200),s.end_headers()),"
        "'log_message':lambda *a:None});"
        "srv=http.server.HTTPServer(('127.0.0.1',int(sys.argv[1])),H);"
        "threading.Timer(1.0, lambda: os._exit(7)).start(); print('up', flush=True); srv.serve_forever()"
    )
    port = free_port()
    spec = ServiceSpec("flaky", [sys.executable, "-c", code, str(port)], f"http://127.0.0.1:{port}/health", 20)
    sup = Supervisor([spec], tmp_path, max_backoff_s=1.0)
    await sup.start()
    try:
        first = sup.procs["flaky"].pid
        log_file = tmp_path / "flaky.log"
        deadline = time.monotonic() + 15
        while log_file.read_text().count("up") < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert log_file.read_text().count("up") >= 2  # it really came back
        assert sup.restarts["flaky"] >= 1 and sup.procs["flaky"].pid != first
    finally:
        await sup.stop()
    assert sup.procs == {}


# Serves /health once `delay` seconds have passed, and logs when it started and when it served.
_SLOW_SERVICE = (
    "import http.server, sys, time;"
    "print('started', time.time(), flush=True); time.sleep(float(sys.argv[2]));"
    "H=type('H',(http.server.BaseHTTPRequestHandler,),{'do_GET':lambda s:(s.send_response(200),s.end_headers()),"
    "'log_message':lambda *a:None});"
    "srv=http.server.HTTPServer(('127.0.0.1',int(sys.argv[1])),H);"
    "print('serving', time.time(), flush=True); srv.serve_forever()"
)


def _logged(path, word: str) -> float:
    return next(float(line.split()[1]) for line in path.read_text().splitlines() if line.startswith(word))


async def test_a_service_after_others_starts_once_they_are_healthy(tmp_path):
    # vLLM on a GPU comes after asr and tts: it must not start while they are still loading
    ports = {name: free_port() for name in ("asr", "tts", "llm")}

    def spec(name: str, delay: float, after: tuple[str, ...] = ()) -> ServiceSpec:
        argv = [sys.executable, "-c", _SLOW_SERVICE, str(ports[name]), str(delay)]
        return ServiceSpec(name, argv, f"http://127.0.0.1:{ports[name]}/health", 20, after=after)

    sup = Supervisor([spec("asr", 1.0), spec("tts", 2.0), spec("llm", 0.0, after=("asr", "tts"))], tmp_path)
    await sup.start()
    try:
        started = {name: _logged(tmp_path / f"{name}.log", "started") for name in ports}
        serving = {name: _logged(tmp_path / f"{name}.log", "serving") for name in ports}
        assert abs(started["asr"] - started["tts"]) < 1.0  # those two start together ...
        assert started["llm"] >= max(serving["asr"], serving["tts"])  # ... the llm after both
    finally:
        await sup.stop()


async def test_nothing_waits_on_a_service_that_failed_to_start(tmp_path):
    broken = ServiceSpec("asr", [sys.executable, "-c", "import sys; sys.exit(4)"], "http://127.0.0.1:9/health", 20)
    after = ServiceSpec(
        "llm", [sys.executable, "-c", "print('should not start')"], "http://127.0.0.1:9/health", 20, after=("asr",)
    )
    sup = Supervisor([broken, after], tmp_path)
    with pytest.raises(ServiceError, match="asr exited with code 4"):
        await asyncio.wait_for(sup.start(), 10)
    assert not (tmp_path / "llm.log").exists() and sup.procs == {}


async def test_an_unknown_or_misordered_dependency_is_refused(tmp_path):
    def spec(name: str, after: tuple[str, ...] = ()) -> ServiceSpec:
        return ServiceSpec(name, ["true"], "http://127.0.0.1:9/health", 1, after=after)

    with pytest.raises(ServiceError, match=r"llm starts after \['gpu'\]"):
        await Supervisor([spec("llm", ("gpu",))], tmp_path).start()
    with pytest.raises(ServiceError, match=r"llm must come after \['asr'\]"):
        await Supervisor([spec("llm", ("asr",)), spec("asr")], tmp_path).start()


@pytest.mark.parametrize(("profile", "after"), [("gpu-24gb", ("asr", "tts")), ("cpu", ())])
def test_vllm_waits_for_the_speech_models_only_on_a_gpu(monkeypatch, profile, after):
    from configs import load_settings
    from services.supervisor import service_specs

    monkeypatch.setenv("HALFSEC_LLM__PYTHON", sys.executable)  # any interpreter that exists
    monkeypatch.setenv("HALFSEC_GPU__GPU_GB", "24")  # the plan without asking nvidia-smi
    specs = {s.name: s for s in service_specs(load_settings(profile), profile)}
    assert specs["llm"].after == after
    assert specs["asr"].after == specs["tts"].after == ()
