"""The supervisor, with real processes: a service that cannot start, and one that dies later."""

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.supervisor import ServiceError, ServiceSpec, Supervisor, Watch
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[1]


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
    sup = Supervisor([spec], tmp_path, watch=Watch(max_backoff_s=1.0))
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


# A service for the watch tests. Each run appends "up <time> <pid>" to its log; what it does
# then is the run's entry in argv[2] (comma-separated, the last repeats): "die:S" exits after S
# seconds, "hang:S" stops answering (accepts, never replies) after S seconds, "sick:S" answers
# /health 503 after S seconds, "late:S" takes S seconds to start serving, "child" starts a
# grandchild (its pid logged) and dies after 1 s.
_WATCHED = """
import http.server, os, subprocess, sys, threading, time
port, plan, log = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3]
run = sum(1 for line in open(log) if line.startswith("up")) if os.path.exists(log) else 0
what, _, after = plan[min(run, len(plan) - 1)].partition(":")
state = {"bad": False}
if what == "late":
    time.sleep(float(after))
def handle(s):
    if state["bad"] and what == "hang":
        time.sleep(3600)
    s.send_response(503 if state["bad"] else 200); s.end_headers()
H = type("H", (http.server.BaseHTTPRequestHandler,), {"do_GET": handle, "log_message": lambda *a: None})
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
with open(log, "a") as f:
    f.write(f"up {time.time()} {os.getpid()}\\n")
if what == "child":
    kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"], start_new_session=False)
    print("child", kid.pid, flush=True)
    threading.Timer(1.0, lambda: os._exit(9)).start()
elif what == "die":
    threading.Timer(float(after), lambda: (open(log, "a").write(f"down {time.time()}\\n"), os._exit(7))).start()
else:
    threading.Timer(float(after), lambda: state.update(bad=True)).start()
srv.serve_forever()
"""


def _watched(tmp_path, name: str, plan: str) -> ServiceSpec:
    port = free_port()
    argv = [sys.executable, "-c", _WATCHED, str(port), plan, str(tmp_path / f"{name}.runs")]
    return ServiceSpec(name, argv, f"http://127.0.0.1:{port}/health", 20)


def _runs(tmp_path, name: str) -> list[list[str]]:
    path = tmp_path / f"{name}.runs"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


async def _until(check, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


FAST = Watch(probe_every_s=0.1, probe_timeout_s=0.5, unhealthy_probes=3, first_backoff_s=0.2, reset_after_s=1.0)


# (bad after 1 s, not sooner: start() polls every 0.25 s and must see the first run healthy)
@pytest.mark.parametrize("plan", ["hang:1.0,ok:99", "sick:1.0,ok:99"])
async def test_a_hung_or_unhealthy_service_is_restarted(tmp_path, plan, caplog):
    caplog.set_level(logging.ERROR, logger="halfsec.supervisor")
    sup = Supervisor([_watched(tmp_path, "svc", plan)], tmp_path, watch=FAST)
    await sup.start()
    try:
        await _until(lambda: len([r for r in _runs(tmp_path, "svc") if r[0] == "up"]) >= 2)
        await _until(lambda: sup.restarts.get("svc", 0) >= 1)
        assert "svc failed 3 health probes in a row" in caplog.text  # restarted for that, not a death
        await asyncio.sleep(0.5)
        assert sup.procs["svc"].poll() is None  # the new one is up and stays up
    finally:
        await sup.stop()


async def test_restart_kills_the_whole_process_group(tmp_path):
    """The dead service's grandchild (vLLM's engine, say) would hold its port or VRAM."""
    sup = Supervisor([_watched(tmp_path, "svc", "child,ok:99")], tmp_path, watch=FAST)
    await sup.start()
    try:
        await _until(lambda: "child" in (tmp_path / "svc.log").read_text())
        kid = int((tmp_path / "svc.log").read_text().split("child")[1].split()[0])
        await _until(lambda: sup.restarts.get("svc", 0) >= 1)
        await _until(lambda: not _alive(kid), timeout_s=5)
    finally:
        await sup.stop()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"  # a zombie is dead, only not yet reaped
    except FileNotFoundError:
        return False


async def test_back_off_doubles_then_resets_after_a_healthy_period(tmp_path):
    # three quick deaths (back-off 0.5, 1, 2 s), then 2.5 s healthy (> reset_after_s), then a
    # death: the restart after it waits 0.5 s again, not 4 s. The first run lives 1.5 s, not
    # 0.2: start() must see it healthy (it polls every 0.25 s), or it reports a failed start,
    # which on a busy CI box it did.
    watch = Watch(probe_every_s=0.1, probe_timeout_s=0.5, first_backoff_s=0.5, reset_after_s=1.0)
    sup = Supervisor([_watched(tmp_path, "svc", "die:1.5,die:0.2,die:0.2,die:2.5,ok:99")], tmp_path, watch=watch)
    await sup.start()
    try:
        await _until(lambda: len([r for r in _runs(tmp_path, "svc") if r[0] == "up"]) >= 5)
    finally:
        await sup.stop()
    runs = _runs(tmp_path, "svc")
    ups = [float(r[1]) for r in runs if r[0] == "up"]
    downs = [float(r[1]) for r in runs if r[0] == "down"]
    waits = [up - down for down, up in zip(downs, ups[1:], strict=False)]
    # each wait is the back-off plus a probe period and a Python start (0.1-0.5 s on a busy box)
    assert waits[2] > waits[0] + 0.8, waits  # 2 s against 0.5 s
    assert waits[3] < waits[2] - 0.8, waits  # reset: 0.5 s, not 4 s


async def test_a_slow_restart_does_not_blind_the_supervisor_to_another_death(tmp_path):
    # a dies first and takes 4 s to come back up; b dies meanwhile and is back long before that
    # (a's first run lives 0.8 s: start() polls every 0.25 s and must see it healthy)
    a, b = _watched(tmp_path, "a", "die:0.8,late:4"), _watched(tmp_path, "b", "die:1.5,ok:99")
    sup = Supervisor([a, b], tmp_path, watch=FAST)
    await sup.start()
    try:
        await _until(lambda: len([r for r in _runs(tmp_path, "b") if r[0] == "up"]) >= 2, timeout_s=3.5)
        assert len([r for r in _runs(tmp_path, "a") if r[0] == "up"]) == 1  # a is still starting
    finally:
        await sup.stop()


def test_halfsec_services_exits_non_zero_with_the_log_when_a_service_cannot_come_up():
    """The ASR port is taken (by something that accepts and never answers): `halfsec services`
    stops what it started and exits 2 (the CLI's error) with the ASR's own last log line."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {
            **os.environ,
            "HALFSEC_ASR__PORT": str(taken.getsockname()[1]),
            "HALFSEC_TTS__PORT": str(free_port()),
            "HALFSEC_LLM__PORT": str(free_port()),
        }
        cmd = [sys.executable, "-m", "agent.cli", "services", "--profile", "cpu"]
        done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "asr exited with code 1 while starting" in done.stderr, done.stderr[-2000:]
    assert "cannot listen on 127.0.0.1" in done.stderr and "address already in use" in done.stderr.lower()
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
