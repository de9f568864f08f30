"""Headless Chromium for the page tests, driven over the DevTools protocol with aiohttp's websocket
client. Chromium comes from Debian (`make test` installs it), so no browser is downloaded from
anywhere else; without it the page tests skip and say why."""

from __future__ import annotations

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
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.ports import free_port

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "runs" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (`make test` installs it: apt-get install chromium)"
)


class DevTools:
    """The few DevTools protocol calls the page tests need, over one page's websocket."""

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

    async def evaluate(self, expression: str, *, user_gesture: bool = False):
        """The expression's value (a promise's, once settled); `user_gesture` runs it as a click
        would (audio, microphone)."""
        result = await self.call(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
            userGesture=user_gesture,
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (value := await self.evaluate(expression)) in (None, False, ""):
            if loop.time() > deadline:
                raise AssertionError(f"page never satisfied {expression!r}")
            await asyncio.sleep(0.1)
        return value

    async def screenshot(self, name: str) -> Path:
        """The whole page as runs/test-artifacts/NAME."""
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        path.write_bytes(base64.b64decode(shot["data"]))
        print(f"\nscreenshot: {path}")
        return path


async def _read_devtools_url(proc: asyncio.subprocess.Process) -> str:
    while line := await asyncio.wait_for(proc.stderr.readline(), 30):
        if m := re.search(rb"DevTools listening on (ws://\S+)", line):
            return m.group(1).decode()
    raise RuntimeError("chromium exited before its DevTools endpoint came up")


@asynccontextmanager
async def chromium_page(http: aiohttp.ClientSession, *flags: str) -> AsyncIterator[DevTools]:
    """A fresh headless Chromium (own profile, killed afterwards) and its blank page, Page domain on."""
    assert CHROMIUM is not None
    profile = tempfile.mkdtemp(prefix="halfsec-chromium-")
    browser = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--window-size=1280,1100",
        *flags,
        "about:blank",
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        ws_url = await _read_devtools_url(browser)
        devtools_http = ws_url.split("/devtools/")[0].replace("ws://", "http://")
        async with http.get(f"{devtools_http}/json/list") as resp:
            page = next(t for t in await resp.json() if t["type"] == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            cdp = DevTools(ws)
            await cdp.call("Page.enable")
            yield cdp
    finally:
        if browser.returncode is None:
            browser.kill()
            await browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class CliServer:
    url: str  # http://127.0.0.1:PORT, no trailing slash
    stderr: str = ""  # all it printed, once it has stopped


@asynccontextmanager
async def halfsec_server(
    http: aiohttp.ClientSession, *args: str, ready: str, env: Mapping[str, str] = os.environ
) -> AsyncIterator[CliServer]:
    """`halfsec ARGS --port <free port>` (a page server) until `ready` answers 200; stopped with
    Ctrl-C afterwards, which must end it with exit status 0."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *args, "--port", str(port)],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
        text=True,
    )
    server = CliServer(f"http://127.0.0.1:{port}")
    try:
        for _ in range(300):  # the CLI imports the agent stack first: give it time
            try:
                async with http.get(server.url + ready) as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"halfsec {args[0]} did not come up: {proc.stderr.read() if proc.poll() else ''}")
        yield server
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        server.stderr = proc.stderr.read()
    assert proc.returncode == 0, server.stderr
