"""`halfsec dashboard` in headless Chromium: the page loads, shows a turn appended to the log after
it loaded, and is screenshotted (runs/test-artifacts/dashboard.png).

Chromium is driven as tests/browser.py says.
"""

import shutil

import aiohttp

from tests.browser import chromium_page, halfsec_server, needs_chromium

from .test_dashboard import DEMO, fast_turn

pytestmark = needs_chromium


async def test_dashboard_shows_a_turn_appended_after_load(tmp_path):
    log = tmp_path / "turns.jsonl"
    shutil.copy(DEMO, log)
    async with (
        aiohttp.ClientSession() as http,
        halfsec_server(http, "dashboard", "--run", str(log), ready="/api/state") as server,
        chromium_page(http) as cdp,
    ):
        await cdp.call("Page.navigate", url=f"{server.url}/")
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
