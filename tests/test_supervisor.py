"""The supervisor, with real processes: a service that cannot start, and one that dies later."""

import asyncio
import socket
import sys
import time

import pytest

from services.supervisor import ServiceError, ServiceSpec, Supervisor


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
