"""`halfsec up start` against a stand-in of the LiveKit server's agent WebSocket
(tests/livekit_standin.py): LiveKit's own AgentServer, runner and job processes, our prewarm,
load, admission and agent name; only the call itself is held by the test (tests/worker_app.py).

What an operator relies on: the worker registers under its agent name, reports its load so the
server skips it when full, and on SIGTERM takes no new call, lets the ones in progress finish and
exits, or ends them after `worker.drain_timeout_s`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
from livekit.protocol import agent

from tests.livekit_standin import API_KEY, API_SECRET, WAIT_S, standin_server
from tests.ports import free_port
from tests.worker_app import HOLD_ENV, HUNG_UP

REPO = Path(__file__).resolve().parents[1]
FULL, AVAILABLE = agent.WorkerStatus.WS_FULL, agent.WorkerStatus.WS_AVAILABLE


class Worker:
    def __init__(self, tmp_path: Path, url: str, mode: str = "start", **env: str) -> None:
        self.mode = mode
        self.hold = tmp_path / "hold"
        self.hold.mkdir()
        self.log = tmp_path / "worker.log"
        self.dashboard_port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "HALFSEC_"))},
            "PYTHONPATH": str(REPO),
            "LIVEKIT_URL": url,
            "LIVEKIT_API_KEY": API_KEY,
            "LIVEKIT_API_SECRET": API_SECRET,
            "HALFSEC_RUNS_DIR": str(tmp_path / "runs"),
            "HALFSEC_LATENCY__DASHBOARD_PORT": str(self.dashboard_port),
            "HALFSEC_TTS__PORT": str(free_port()),  # no TTS: prewarm logs it and goes on
            HOLD_ENV: str(self.hold),
            **env,
        }
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Worker:
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.worker_app", self.mode, cwd=REPO, env=self.env, stdout=out, stderr=out
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def started(self, job: str) -> str:
        """The job's metadata, once its call is up in a job process."""
        async with asyncio.timeout(WAIT_S):
            while not (self.hold / f"{job}.started").exists():
                await asyncio.sleep(0.05)
        return (self.hold / f"{job}.started").read_text()

    def hang_up(self, job: str) -> None:
        (self.hold / f"{job}.release").touch()

    def ended(self, job: str) -> str | None:
        path = self.hold / f"{job}.ended"
        return path.read_text() if path.exists() else None

    async def exit_code(self) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), WAIT_S)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


async def test_sigterm_lets_the_call_in_progress_finish_and_takes_no_new_one(tmp_path):
    async with standin_server() as (lk, url), Worker(tmp_path, url, HALFSEC_WORKER__MAX_CALLS="2") as w:
        register = await asyncio.wait_for(lk.registered, WAIT_S)
        assert register.agent_name == "halfsec"  # worker.agent_name: explicit dispatch
        assert register.type == agent.JobType.JT_ROOM and lk.identity_checked

        # load = calls in progress / worker.max_calls, reported to the server
        assert (await lk.offer("J1", metadata='{"voice": "bf_emma"}')).available
        assert await w.started("J1") == '{"voice": "bf_emma"}'  # the job's metadata reaches the call
        await lk.status(lambda s: s.load == 0.5 and s.status == AVAILABLE)
        assert (await lk.offer("J2")).available
        await w.started("J2")
        full = await lk.status(lambda s: s.load == 1.0)
        assert full.status == FULL and full.job_count == 2
        assert not (await lk.offer("J3")).available  # full: the server is to dispatch elsewhere
        w.hang_up("J2")
        await lk.status(lambda s: s.status == AVAILABLE and s.job_count == 1)

        assert w.proc is not None
        w.proc.send_signal(signal.SIGTERM)
        await lk.status(lambda s: s.status == FULL and s.job_count == 1)  # draining: J1 still on
        assert not (await lk.offer("J4")).available  # half full, yet no new call while draining
        assert w.proc.returncode is None and w.ended("J1") is None  # J1's call goes on
        async with aiohttp.ClientSession() as http:  # and the dashboard still serves
            async with http.get(f"http://127.0.0.1:{w.dashboard_port}/metrics") as resp:
                assert resp.status == 200
        w.hang_up("J1")
        assert await w.exit_code() == 0, w.output()[-3000:]

    assert (w.ended("J1"), w.ended("J2")) == (HUNG_UP, HUNG_UP)  # both calls ended by their callers
    # what runs beside the worker (the services) came up before it took calls, went down after the last
    up, down, last = (w.hold / n for n in ("beside.up", "beside.down", "J1.ended"))
    assert up.stat().st_mtime <= (w.hold / "J1.started").stat().st_mtime <= last.stat().st_mtime
    assert last.stat().st_mtime <= down.stat().st_mtime
    assert not (w.hold / "J3.started").exists() and not (w.hold / "J4.started").exists()
    assert "draining worker" in w.output() and "drain timed out" not in w.output()


async def test_the_drain_ends_calls_still_going_after_its_timeout(tmp_path):
    env = {"HALFSEC_WORKER__DRAIN_TIMEOUT_S": "1", "LIVEKIT_AGENT_NAME": "front-desk"}
    async with standin_server() as (lk, url), Worker(tmp_path, url, **env) as w:
        register = await asyncio.wait_for(lk.registered, WAIT_S)
        assert register.agent_name == "front-desk"  # LiveKit's own variable wins over the setting
        assert (await lk.offer("J1")).available
        await w.started("J1")
        assert w.proc is not None
        w.proc.send_signal(signal.SIGTERM)
        assert await w.exit_code() == 0, w.output()[-3000:]
    assert "drain timed out" in w.output()
    ended = w.ended("J1")
    assert ended is not None and ended != HUNG_UP  # the worker ended the call, and its shutdown ran


async def test_dev_mode_exits_without_draining(tmp_path):
    async with standin_server() as (lk, url), Worker(tmp_path, url, mode="dev") as w:
        await asyncio.wait_for(lk.registered, WAIT_S)
        assert (await lk.offer("J1")).available
        await w.started("J1")
        assert w.proc is not None
        w.proc.send_signal(signal.SIGTERM)
        assert await w.exit_code() == 0, w.output()[-3000:]
    ended = w.ended("J1")
    assert ended is not None and ended != HUNG_UP  # ended by the worker, at once
    assert "draining worker" not in w.output()
