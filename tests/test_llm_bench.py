"""`halfsec bench llm`: its measurements against a scripted OpenAI-compatible stream (timings known
in advance), the command end to end against the same fake, and the real vLLM service."""

import asyncio
import json
import threading
import time
from typing import Self

import pytest
from aiohttp import web

from agent.cli import main
from services.llm.bench import run_bench
from services.supervisor import ServiceSpec

FIRST_TOKEN_S = 0.05  # the fake's time to first token ...
TOKEN_GAP_S = 0.005  # ... and between tokens
TOKENS = ["Sure", ",", " I", " can", " help", " with", " that", ".", " Anything", " else", "?"]


class FakeOpenAI:
    """A chat-completions server streaming TOKENS at a fixed pace, recording each request. It runs
    on its own thread and event loop, so sync code (the CLI's asyncio.run) can call it too."""

    def __init__(self, model_root: str = "fake-model") -> None:
        self.requests: list[dict] = []
        self.model_root = model_root
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def send(payload: dict) -> None:
            await resp.write(f"data: {json.dumps(payload)}\n\n".encode())

        base = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
        await asyncio.sleep(FIRST_TOKEN_S)
        for i, token in enumerate(TOKENS):
            if i:
                await asyncio.sleep(TOKEN_GAP_S)
            await send(base | {"choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}]})
        prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(TOKENS),
            "total_tokens": prompt_tokens + len(TOKENS),
        }
        await send(base | {"choices": [], "usage": usage})
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "halfsec-llm", "root": self.model_root}]})

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)  # any free port, never the services' ones
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def test_bench_measures_what_the_stream_does():
    with FakeOpenAI() as fake:
        t0 = time.monotonic()
        figures = await run_bench(
            fake.url, "halfsec-llm", "Be brief.", concurrency=[1, 3], turns=4, requests=2, max_tokens=11
        )
        elapsed = time.monotonic() - t0
    assert set(figures["levels"]) == {"1", "3"}
    for level in figures["levels"].values():
        assert level["requests"] == level["concurrency"] * 2
        # the fake's first token comes after 50 ms; the sentence ends at the 8th token
        assert FIRST_TOKEN_S * 1000 <= level["ttft_ms_p50"] <= level["ttft_ms_p95"] < 1000
        assert level["first_sentence_ms_p50"] >= (FIRST_TOKEN_S + 7 * TOKEN_GAP_S) * 1000
        assert 0 < level["tokens_per_s_per_stream"] <= 1 / TOKEN_GAP_S  # 10 gaps of 5 ms: <= 200/s
    # three streams at once decode about three times the tokens per second of one
    assert figures["levels"]["3"]["tokens_per_s"] > 2 * figures["levels"]["1"]["tokens_per_s"]
    assert figures["turns"] == 4 and len(figures["ttft_ms_by_turn"]) == 4
    assert figures["ttft_turn1_ms"] >= FIRST_TOKEN_S * 1000 and figures["ttft_turnN_ms"] >= FIRST_TOKEN_S * 1000
    assert figures["prompt_tokens_turnN"] > figures["prompt_tokens_turn1"]  # the conversation grew
    # 1 warm-up + (1 + 3) callers x 2 requests + 4 turns, each request's time accounted for
    assert len(fake.requests) == 1 + 8 + 4 and elapsed < 10
    levels, talk = fake.requests[1:9], fake.requests[9:]
    assert all(r.get("ignore_eos") is True and r["stream"] for r in levels)  # fixed-length replies
    assert all("ignore_eos" not in r for r in talk)  # natural replies, appended to the history
    assert [len(r["messages"]) for r in talk] == [2, 4, 6, 8]
    assert talk[-1]["messages"][:6] == talk[-2]["messages"][:6]  # each turn extends the last prompt
    assert talk[1]["messages"][2] == {"role": "assistant", "content": "".join(TOKENS)}


async def test_bench_refuses_bad_levels():
    with pytest.raises(ValueError, match="positive"):
        await run_bench("http://127.0.0.1:9", "m", "s", concurrency=[0], turns=1)


def test_bench_llm_command_json_last_line(monkeypatch, capsys):
    from configs import load_settings

    model_root = load_settings("cpu").model_path(load_settings("cpu").llm.model)
    with FakeOpenAI(model_root) as fake:
        monkeypatch.setenv("HALFSEC_LLM__PORT", str(fake.port))
        # the fake is healthy, so the supervisor reuses it and starts nothing
        spec = ServiceSpec("llm", ["false"], f"{fake.url}/health", 5)
        monkeypatch.setattr("services.supervisor.service_specs", lambda settings, profile, names=(): [spec])
        rc = main(["bench", "llm", "--concurrency", "1,2", "--turns", "2", "--requests", "1", "--json"])
    assert rc == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "LLM bench" in out[0] and "TTFT" in "\n".join(out)  # the table came first
    data = json.loads(out[-1])
    for level in ("1", "2"):
        assert {"ttft_ms_p50", "ttft_ms_p95", "tokens_per_s"} <= set(data["levels"][level])
    assert data["ttft_turn1_ms"] > 0 and data["ttft_turnN_ms"] > 0


def test_bench_llm_command_refuses_a_service_running_another_model(monkeypatch, capsys):
    with FakeOpenAI("some/other-model") as fake:
        monkeypatch.setenv("HALFSEC_LLM__PORT", str(fake.port))
        spec = ServiceSpec("llm", ["false"], f"{fake.url}/health", 5)
        monkeypatch.setattr("services.supervisor.service_specs", lambda settings, profile, names=(): [spec])
        assert main(["bench", "llm", "--turns", "1", "--concurrency", "1"]) == 2
    assert "runs 'some/other-model'" in capsys.readouterr().err


async def test_bench_against_vllm(services, settings):
    """The real vLLM server (started once per session, as for test_llm_service)."""
    o = settings.llm
    figures = await run_bench(
        o.local_url,
        o.served_model_name,
        o.system_prompt,
        concurrency=[1, 2],
        turns=3,
        requests=1,
        max_tokens=16,
        temperature=0,
    )
    for level in figures["levels"].values():
        assert 0 < level["ttft_ms_p50"] <= level["ttft_ms_p95"] < 5000
        assert level["tokens_per_s"] > 0
    assert figures["prompt_tokens_turnN"] > figures["prompt_tokens_turn1"] > 0
    assert figures["ttft_turnN_ms"] > 0
