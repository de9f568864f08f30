"""`halfsec kiosk` in headless Chromium: the page loads (nothing from elsewhere), fetches a token
when the caller presses Call, and connects to LIVEKIT_URL. No LiveKit server exists here, so a
loopback WebSocket stand-in records the connection livekit-client makes and closes it; the test
verifies the JWT it carried (signature, room, grants, agent dispatch) and that the page then says
it cannot reach the LiveKit server. Screenshot: runs/test-artifacts/kiosk.png.

A kiosk without LiveKit credentials still serves the page, which says why it cannot call. What the
page shows of a call (static/view.js: transcript, agent state, waterfall) is fed real turn records.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web
from livekit.api import TokenVerifier

from agent.kiosk import running
from latency import build_record
from tests.browser import DevTools, chromium_page, halfsec_server, needs_chromium
from tests.ports import free_port
from tests.test_dashboard import FAST_MARKS

pytestmark = needs_chromium

KEY, SECRET = "kiosk-browser-key", "kiosk-browser-secret-5d1e7c0b9a2f-7734be"
FAKE_MEDIA = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")


class LiveKitStandIn:
    """Answers where a LiveKit server would: records each signalling WebSocket (path and
    access_token) and closes it, and refuses every other request (livekit-client's /validate)."""

    def __init__(self) -> None:
        self.connections: list[tuple[str, str]] = []
        self.other: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        if not ws.can_prepare(request).ok:
            self.other.append(request.path)
            return web.Response(status=503, text="stand-in: no LiveKit server here")
        self.connections.append((request.path, request.query.get("access_token", "")))
        await ws.prepare(request)
        await ws.close(code=1011, message=b"stand-in: no LiveKit server here")
        return ws

    @asynccontextmanager
    async def serving(self, port: int) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            yield f"ws://127.0.0.1:{port}"
        finally:
            await runner.cleanup()


@asynccontextmanager
async def kiosk_cli(http: aiohttp.ClientSession, livekit: dict[str, str]) -> AsyncIterator[str]:
    """`halfsec kiosk` with `livekit` as its only LIVEKIT_* variables: its page's URL."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}, **livekit}
    async with halfsec_server(http, "kiosk", ready="/health", env=env) as server:
        yield f"{server.url}/"
    assert SECRET not in server.stderr


async def open_page(cdp: DevTools, url: str) -> None:
    await cdp.call("Page.navigate", url=url)
    # the script sets the state once it has run: "loading" until then
    ready = "document.body && document.body.dataset.state !== 'loading' && document.body.dataset.state"
    assert await cdp.wait_for(ready) == "idle"
    # everything the page loaded came from the kiosk itself (the bundle, the dashboard's files)
    loaded = await cdp.evaluate("performance.getEntriesByType('resource').map((e) => e.name)")
    assert loaded and all(name.startswith(url) for name in loaded), loaded


async def press_call(cdp: DevTools) -> None:
    await cdp.evaluate("document.getElementById('call').click()", user_gesture=True)


async def test_the_page_calls_livekit_url_with_a_token_that_dispatches_the_agent():
    standin = LiveKitStandIn()
    async with (
        aiohttp.ClientSession() as http,
        standin.serving(free_port()) as livekit_url,
        kiosk_cli(http, {"LIVEKIT_URL": livekit_url, "LIVEKIT_API_KEY": KEY, "LIVEKIT_API_SECRET": SECRET}) as url,
        chromium_page(http, *FAKE_MEDIA) as cdp,
    ):
        await open_page(cdp, url)
        assert standin.connections == []  # nothing until the caller presses Call
        await cdp.evaluate("document.getElementById('name').value = 'Ada'")
        await press_call(cdp)
        state = await cdp.wait_for(
            "['unreachable', 'refused', 'error', 'unconfigured'].includes(document.body.dataset.state)"
            " && document.body.dataset.state",
            timeout=45,
        )
        status = await cdp.evaluate("document.getElementById('status').textContent")
        assert state == "unreachable", status
        assert status == f"cannot reach the LiveKit server at {livekit_url}"
        await cdp.screenshot("kiosk.png")

    print(f"stand-in saw {[p for p, _ in standin.connections]}, other requests {standin.other}")
    assert standin.connections, f"livekit-client never opened a WebSocket (other requests: {standin.other})"
    rooms = set()
    for path, token in standin.connections:
        assert path.startswith("/rtc"), path  # livekit-client's signalling path (/rtc/v1, or /rtc)
        claims = TokenVerifier(KEY, SECRET).verify(token)  # signed with the secret, not expired
        assert claims.video.room_join and claims.video.room.startswith("kiosk-")
        assert claims.identity.startswith("caller-") and claims.name == "Ada"
        assert [a.agent_name for a in claims.room_config.agents] == ["halfsec"]
        rooms.add(claims.video.room)
    assert len(rooms) == 1  # retries reuse the one token: one call, one room


async def test_without_credentials_the_page_says_it_cannot_call():
    async with aiohttp.ClientSession() as http, kiosk_cli(http, {}) as url, chromium_page(http) as cdp:
        await open_page(cdp, url)
        await press_call(cdp)
        assert await cdp.wait_for("document.body.dataset.state !== 'fetching' && document.body.dataset.state") == (
            "unconfigured"
        )
        status = await cdp.evaluate("document.getElementById('status').textContent")
    assert status.startswith("cannot start a call: LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET not set"), status


async def test_the_page_shows_the_transcript_and_each_turn_as_it_lands(settings):
    first = build_record("kiosk-call", 1, FAST_MARKS, 500.0, user_text="what time is it").to_json()
    slow = {**FAST_MARKS, "tts_first_audio": 0.9, "first_frame_out": 0.91}  # TTS over its budget
    second = build_record("kiosk-call", 2, slow, 500.0).to_json()
    async with (
        aiohttp.ClientSession() as http,
        running(settings, port=free_port(), env={}) as kiosk,
        chromium_page(http) as cdp,
    ):
        await open_page(cdp, kiosk.url)
        await cdp.evaluate(
            """(async () => {
              const view = await import("/static/view.js");
              const stream = async function* (...chunks) { yield* chunks; };
              view.showAgentState("thinking");
              // the caller's words: each stream the whole text so far; the agent's: deltas in one
              await view.showTranscript("SG_1", "caller", false, stream("what time"));
              await view.showTranscript("SG_1", "caller", true, stream("what time is it"));
              await view.showTranscript("SG_2", "agent", true, stream("It is ", "noon."));
            })()"""
        )
        lines = await cdp.evaluate(
            "[...document.querySelectorAll('#transcript li')].map((li) => [li.className, li.textContent])"
        )
        assert lines == [["caller final", "what time is it"], ["agent final", "It is noon."]]
        assert await cdp.evaluate("document.getElementById('agent-state').textContent") == "thinking"
        assert await cdp.evaluate("document.body.dataset.turns") is None

        for n, record in enumerate((first, second), 1):  # as the data messages arrive
            payload = json.dumps(record)
            await cdp.evaluate(
                f"import('/static/view.js').then((v) => v.addTurn(new TextEncoder().encode({payload!r})))"
            )
            assert await cdp.evaluate("document.body.dataset.turns") == str(n)
        waterfall = await cdp.evaluate("document.getElementById('waterfall').textContent")
        assert "turn 1" in waterfall and "turn 2" in waterfall and "345 ms" in waterfall and "910 ms" in waterfall
        over = await cdp.evaluate("[...document.querySelectorAll('#waterfall rect.over')].length")
        assert over == len(second["over_budget"]) >= 1  # only the slow turn's overrun stages
        assert await cdp.evaluate("document.getElementById('no-turns').hidden") is True
        await cdp.screenshot("kiosk-turns.png")
