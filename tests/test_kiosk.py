"""The kiosk's token endpoint over HTTP (agent/kiosk/): what a token grants, what a bad request,
a missing LiveKit configuration and a client over its rate get, that the API secret never leaves
the server, and that the committed page bundle is the livekit-client the lock pins."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from livekit.api import TokenVerifier

from agent.kiosk import make_app, running
from agent.kiosk.ratelimit import RateLimiter, retry_after
from configs import Settings, load_settings
from tests.ports import free_port

KIOSK = Path(__file__).resolve().parents[1] / "agent" / "kiosk"
KEY, SECRET = "kiosk-test-key", "kiosk-test-secret-0f3c9a1d7e5b-48c2a9"
ENV = {"LIVEKIT_URL": "ws://127.0.0.1:7880", "LIVEKIT_API_KEY": KEY, "LIVEKIT_API_SECRET": SECRET}


def kiosk_settings(**kiosk: object) -> Settings:
    settings = load_settings("cpu")
    return settings.model_copy(update={"kiosk": settings.kiosk.model_copy(update=kiosk)})


def client(settings: Settings | None = None, env: dict[str, str] = ENV) -> TestClient:
    return TestClient(TestServer(make_app(settings or kiosk_settings(), env)))


async def test_a_token_joins_one_new_room_with_the_agent_dispatched():
    async with client(kiosk_settings(token_ttl_s=120, room_prefix="lobby")) as http:
        resp = await http.post("/api/token", json={"name": "Ada"})
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
        body = await resp.json()
        again = await (await http.post("/api/token")).json()  # no body at all: the defaults
    assert set(body) == {"url", "token", "room", "identity"} and body["url"] == ENV["LIVEKIT_URL"]
    claims = TokenVerifier(KEY, SECRET).verify(body["token"])
    assert claims.identity == body["identity"] and claims.name == "Ada"
    assert claims.video.room_join and claims.video.room == body["room"] and body["room"].startswith("lobby-")
    assert claims.video.can_publish and claims.video.can_subscribe and not claims.video.room_admin
    assert [a.agent_name for a in claims.room_config.agents] == ["halfsec"]  # worker.agent_name
    payload = json.loads(_b64(body["token"].split(".")[1]))
    assert payload["exp"] - payload["nbf"] in (119, 120, 121)  # kiosk.token_ttl_s, to the second
    assert again["room"] != body["room"] and again["identity"] != body["identity"]


def _b64(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def test_automatic_dispatch_puts_no_agent_in_the_token():
    settings = kiosk_settings()
    settings = settings.model_copy(update={"worker": settings.worker.model_copy(update={"agent_name": ""})})
    async with client(settings) as http:
        body = await (await http.post("/api/token", json={})).json()
    assert TokenVerifier(KEY, SECRET).verify(body["token"]).room_config is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"name=Ada", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'"Ada"', "expected a JSON object"),
        (b'{"name": 5}', "name: Input should be a valid string"),
        (json.dumps({"name": "x" * 65}).encode(), "name: String should have at most 64 characters"),
        (b'{"name": "a\\u0007b"}', "name: String should match pattern"),
        (b'{"room": "someone-elses"}', "room: Extra inputs are not permitted"),
        (b'{"name": "' + b"x" * 5000 + b'"}', "larger than 4096 bytes"),
    ],
)
async def test_a_bad_body_gets_400_and_says_what_is_wrong(body, says):
    async with client(kiosk_settings(requests_per_minute=100)) as http:
        resp = await http.post("/api/token", data=body, headers={"Content-Type": "application/json"})
        error = (await resp.json())["error"]
    assert resp.status == 400 and error.startswith("bad request body: ") and says in error, error
    assert "\n" not in error


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET not set"),
        ({**ENV, "LIVEKIT_API_SECRET": ""}, "LIVEKIT_API_SECRET not set"),
    ],
)
async def test_without_livekit_credentials_the_endpoint_answers_503(env, named):
    async with client(env=env) as http:
        resp = await http.post("/api/token", json={})
        error = (await resp.json())["error"]
        page = await http.get("/")
    assert resp.status == 503 and error.startswith(named) and "cannot give out LiveKit tokens" in error
    assert page.status == 200  # the page still loads, and says so when a call is tried


async def test_a_client_over_its_rate_gets_429_with_retry_after():
    async with client(kiosk_settings(requests_per_minute=3)) as http:
        answers = [await http.post("/api/token", data=b"nonsense") for _ in range(3)]  # bad ones count too
        over = await http.post("/api/token", json={})
        error = (await over.json())["error"]
    assert [a.status for a in answers] == [400, 400, 400]
    assert over.status == 429 and "too many token requests" in error
    assert 1 <= int(over.headers["Retry-After"]) <= 60


def test_the_rate_limit_is_per_client_and_slides():
    now = [1000.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.check("a") == 0.0
    now[0] = 1020.0
    assert limiter.check("a") == 0.0
    now[0] = 1030.0
    assert limiter.check("a") == 30.0 and limiter.check("b") == 0.0  # another client is not held up
    now[0] = 1060.0  # the first of a's requests leaves the window, the refused one never entered it
    assert limiter.check("a") == 0.0 and limiter.check("a") == 20.0
    assert retry_after(20.0) == "20" and retry_after(0.2) == "1"
    now[0] += 600
    limiter.check("c")  # a quiet minute later, a and b are forgotten
    assert set(limiter._seen) == {"c"}


async def test_the_api_secret_appears_in_no_response():
    async with client(kiosk_settings(requests_per_minute=2)) as http:
        responses = [
            await http.get("/"),
            await http.get("/static/kiosk.js"),
            await http.get("/static/kiosk.css"),
            await http.get("/dashboard/waterfall.js"),
            await http.get("/dashboard/dashboard.css"),
            await http.get("/health"),
            await http.post("/api/token", json={"name": "Ada"}),
            await http.post("/api/token", data=b"[]"),
            await http.post("/api/token", json={}),  # 429
            await http.get("/no-such-page"),
        ]
        seen = [(r.status, await r.read(), str(dict(r.headers))) for r in responses]
    assert [s for s, _, _ in seen] == [200, 200, 200, 200, 200, 200, 200, 400, 429, 404]
    token = json.loads(seen[6][1])["token"]
    texts = [body + headers.encode() for _, body, headers in seen] + [_b64(p) for p in token.split(".")[:2]]
    assert all(SECRET.encode() not in text for text in texts)


async def test_running_serves_on_the_kiosk_port_and_says_what_it_calls():
    port = free_port()
    async with running(kiosk_settings(port=port), env=ENV) as kiosk:
        assert kiosk.url == f"http://127.0.0.1:{port}/" and kiosk.livekit_url == ENV["LIVEKIT_URL"]
        async with aiohttp.ClientSession() as http, http.get(f"{kiosk.url}health") as resp:
            assert (await resp.json()) == {"status": "ok"}
    async with running(kiosk_settings(port=free_port()), env={}) as kiosk:
        assert kiosk.livekit_url is None and "LIVEKIT_URL" in (kiosk.problem or "")


def test_the_committed_bundle_is_the_livekit_client_the_lock_pins():
    lock = json.loads((KIOSK / "web" / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/livekit-client"]["version"]
    wanted = json.loads((KIOSK / "web" / "package.json").read_text())["devDependencies"]
    bundle = (KIOSK / "static" / "kiosk.js").read_text()
    assert wanted["livekit-client"] == pinned and wanted["esbuild"][0].isdigit()  # exact pins, no ranges
    assert bundle.startswith(f"// livekit-client {pinned} ")  # the build's banner ...
    assert f'"{pinned}"' in bundle  # ... and livekit-client's own version constant inside
