"""`halfsec dashboard` in headless Chromium: the page loads, shows a turn appended to the log after
it loaded, and is screenshotted (runs/test-artifacts/dashboard.png).

Chromium is driven as tests/browser.py says.
"""

import asyncio
import os
import shutil
import signal
import subprocess
import sys

import aiohttp

from tests.browser import REPO, chromium_page, needs_chromium
from tests.ports import free_port

from .test_dashboard import DEMO, fast_turn

pytestmark = needs_chromium


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

            async with chromium_page(http) as cdp:
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

                path = await cdp.screenshot("dashboard.png")
                assert path.stat().st_size > 20_000
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    assert server.returncode == 0, server.stderr.read()
