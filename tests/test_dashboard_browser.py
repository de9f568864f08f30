"""`halfsec dashboard` in headless Chromium: the page loads, shows a turn appended to the log after
it loaded, and is screenshotted (runs/test-artifacts/dashboard.png).

Chromium comes from Debian (`make test` installs it); the test drives it over the DevTools protocol
with aiohttp's websocket client, so no browser is downloaded from anywhere else.
"""

import asyncio
import base64
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
import pytest

from tests.ports import free_port

from .test_dashboard import DEMO, fast_turn

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "runs" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (`make test` installs it: apt-get install chromium)"
)


class DevTools:
    """The few DevTools protocol calls this test needs, over one page's websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self._ids = ws, itertools.count(1)

    async def call(self, method: str, **params):
        msg_id = next(self._ids)
        await self.ws.send_json({"id": msg_id, "method": method, "params": params})
        while True:  # skip events until our answer
            msg = await self.ws.receive_json(timeout=30)
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    async def evaluate(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (value := await self.evaluate(expression)) in (None, False, ""):
            if loop.time() > deadline:
                raise AssertionError(f"page never satisfied {expression!r}")
            await asyncio.sleep(0.1)
        return value


async def _read_devtools_url(proc: asyncio.subprocess.Process) -> str:
    while line := await asyncio.wait_for(proc.stderr.readline(), 30):
        if m := re.search(rb"DevTools listening on (ws://\S+)", line):
            return m.group(1).decode()
    raise RuntimeError("chromium exited before its DevTools endpoint came up")


async def test_dashboard_shows_a_turn_appended_after_load(tmp_path):
    log = tmp_path / "turns.jsonl"
    shutil.copy(DEMO, log)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "dashboard", "--port", str(port), "--run", str(log)],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    profile = tempfile.mkdtemp(prefix="halfsec-chromium-")
    browser = None
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):  # the CLI imports the agent stack first: give it time
                try:
                    async with http.get(f"http://127.0.0.1:{port}/api/state") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"dashboard did not come up: {server.stderr.read() if server.poll() else ''}")

            browser = await asyncio.create_subprocess_exec(
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "--window-size=1280,1100",
                "about:blank",
                stderr=asyncio.subprocess.PIPE,
            )
            ws_url = await _read_devtools_url(browser)
            devtools_http = ws_url.split("/devtools/")[0].replace("ws://", "http://")
            async with http.get(f"{devtools_http}/json/list") as resp:
                page = next(t for t in await resp.json() if t["type"] == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                cdp = DevTools(ws)
                await cdp.call("Page.enable")
                await cdp.call("Page.navigate", url=f"http://127.0.0.1:{port}/")
                assert await cdp.wait_for("document.body && document.body.dataset.turns") == "3"
                assert "703ccc" in await cdp.evaluate("document.getElementById('waterfall').textContent")

                fast_turn("appended-call", log)  # lands after the page loaded
                assert await cdp.wait_for("document.body.dataset.turns === '4' && document.body.dataset.turns") == "4"
                waterfall = await cdp.evaluate("document.getElementById('waterfall').textContent")
                calls = await cdp.evaluate("document.getElementById('calls').textContent")
                headline = await cdp.evaluate("document.getElementById('headline').textContent")
                assert "append #1" in waterfall and "345 ms" in waterfall
                assert "appended-call" in calls
                assert "4 turns" in headline and "1/4 turns (25%) within 500 ms" in headline
                over = await cdp.evaluate("document.querySelectorAll('#waterfall rect.over').length")
                assert over == 12  # the demo's 3 turns overran 4 stages each; the new turn none

                shot = await cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                path = ARTIFACTS / "dashboard.png"
                path.write_bytes(base64.b64decode(shot["data"]))
                print(f"\ndashboard screenshot: {path}")
                assert path.stat().st_size > 20_000
    finally:
        if browser is not None and browser.returncode is None:
            browser.kill()
            await browser.wait()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(profile, ignore_errors=True)
    assert server.returncode == 0, server.stderr.read()
