"""`halfsec models` on a hub profile, against a loopback stand-in of the hub's API (HF_ENDPOINT):
no model hub is reachable here, so the repos are tiny and made up, but the client is the real
huggingface_hub and the command is the real CLI."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest
from aiohttp import web

from services.provision import ProvisionError
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
MB = 1 << 20


def _git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class StandInHub:
    """The hub's model API and file downloads, for repos held in memory. A file's LFS record can
    lie about its content (`bad`), and its first download can be cut after `cut_at` bytes."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.bad: set[tuple[str, str]] = set()  # (repo, file) served with other bytes than recorded
        self.cut_at: dict[tuple[str, str], int] = {}
        self.gets: list[tuple[str, str, str | None]] = []  # (repo, file, Range header)

    def lfs(self, name: str) -> bool:
        return name.endswith((".bin", ".safetensors"))

    async def info(self, request: web.Request) -> web.Response:
        repo = f"{request.match_info['owner']}/{request.match_info['name']}"
        if repo not in self.repos:
            return web.json_response({"error": "Repository not found"}, status=404)
        siblings = []
        for name, data in self.repos[repo].items():
            entry = {"rfilename": name, "size": len(data), "blobId": _git_blob(data)}
            if self.lfs(name):
                entry["lfs"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134}
            siblings.append(entry)
        return web.json_response({"id": repo, "sha": COMMIT, "siblings": siblings})

    async def resolve(self, request: web.Request) -> web.StreamResponse:
        repo = f"{request.match_info['owner']}/{request.match_info['name']}"
        name = request.match_info["path"]
        data = self.repos.get(repo, {}).get(name)
        if data is None:
            return web.Response(status=404, headers={"X-Error-Code": "EntryNotFound"})
        recorded = data
        if (repo, name) in self.bad:
            data = bytes(b ^ 0xFF for b in data)
        etag = hashlib.sha256(recorded).hexdigest() if self.lfs(name) else _git_blob(recorded)
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if self.lfs(name):
            headers |= {"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(recorded))}
        if request.method == "HEAD":
            return web.Response(body=data, headers=headers)
        rng = request.headers.get("Range")
        self.gets.append((repo, name, rng))
        start = int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
        resp = web.StreamResponse(status=206 if rng else 200, headers=headers)
        if rng:
            resp.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        resp.content_length = len(data) - start
        await resp.prepare(request)
        if (cut := self.cut_at.pop((repo, name), None)) is not None:
            await resp.write(data[start:cut])
            await asyncio.sleep(0.1)
            request.transport.close()  # the connection drops mid-file
            return resp
        await resp.write(data[start:])
        await resp.write_eof()
        return resp


@pytest.fixture
async def hub():
    stand_in = StandInHub()
    app = web.Application()
    app.router.add_get("/api/models/{owner}/{name}/revision/{rev}", stand_in.info)
    app.router.add_get("/{owner}/{name}/resolve/{rev}/{path:.+}", stand_in.resolve)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stand_in.url = f"http://127.0.0.1:{port}"
    yield stand_in
    await runner.cleanup()


def _env(endpoint: str, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    return {
        **env,
        "HF_ENDPOINT": endpoint,
        "HF_HUB_CACHE": str(cache),
        "TQDM_POSITION": "-1",  # huggingface_hub's progress bars, as in a terminal
        # the ASR and the LLM from the stand-in; the TTS stays the local ONNX one (the torch
        # backend's phonemiser is tested on its own below)
        "HALFSEC_ASR__MODEL": "hf:test/whisper",
        "HALFSEC_LLM__MODEL": "hf:test/llm",
        "HALFSEC_TTS__BACKEND": "onnx",
        "HALFSEC_TTS__MODEL": "kokoro/kokoro-v1.0.int8.onnx",
        "HALFSEC_TTS__VOICES": "kokoro/voices-en.npz",
    }


async def _models(env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli", "models", "--profile", "gpu-24gb",
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 240)
    return proc.returncode, out.decode(errors="replace")


def _snapshot(cache: Path, repo: str) -> Path:
    return cache / f"models--{repo.replace('/', '--')}" / "snapshots" / COMMIT


async def test_models_fetches_what_the_services_load_resuming_a_cut_transfer(hub, tmp_path):
    from huggingface_hub.constants import DOWNLOAD_CHUNK_SIZE as CHUNK  # what the library keeps of a cut

    weights = os.urandom(CHUNK + MB)
    hub.repos["test/whisper"] = {
        "config.json": b'{"alignment_heads": []}',
        "model.bin": weights,
        "tokenizer.json": b"{}",
        "vocabulary.txt": b"a\nb\n",
        "README.md": b"# not loaded by faster-whisper",
    }
    hub.repos["test/llm"] = {"config.json": b"{}", "model.safetensors": os.urandom(MB), "LICENSE": b"x"}
    hub.cut_at[("test/whisper", "model.bin")] = CHUNK + MB // 2
    cache = tmp_path / "hub"
    code, out = await _models(_env(hub.url, cache))
    assert code == 0, out[-3000:]
    whisper = _snapshot(cache, "test/whisper")
    assert (whisper / "model.bin").read_bytes() == weights
    assert (cache / "models--test--whisper/refs/main").read_text() == COMMIT  # what an offline load looks up
    assert not (whisper / "README.md").exists() and not (_snapshot(cache, "test/llm") / "LICENSE").exists()
    # the cut transfer went on from where it stopped, not from the start
    assert [g for g in hub.gets if g[1] == "model.bin"] == [
        ("test/whisper", "model.bin", None),
        ("test/whisper", "model.bin", f"bytes={CHUNK}-"),
    ]
    assert "model.bin: 100%" in out  # the library's progress bar (forced on: not a terminal here)
    assert "ok model.bin (fetched, 11.5 MB in" in out
    assert "hub models present and checked: test/whisper, test/llm" in out

    # a second run finds every file complete and fetches none
    hub.gets.clear()
    code, out = await _models(_env(hub.url, cache))
    assert code == 0, out[-3000:]
    assert hub.gets == []
    assert "ok model.bin (present; checked)" in out


async def test_a_file_that_does_not_match_the_hubs_checksum_is_refused_and_deleted(hub, tmp_path):
    weights = os.urandom(MB)
    hub.repos["test/whisper"] = {"config.json": b"{}", "model.bin": weights}
    hub.repos["test/llm"] = {"config.json": b"{}", "model.safetensors": os.urandom(MB)}
    hub.bad.add(("test/whisper", "model.bin"))
    cache = tmp_path / "hub"
    code, out = await _models(_env(hub.url, cache))
    assert code == 2, out[-3000:]
    assert "test/whisper/model.bin: sha256 " in out and "the hub says" in out and "deleted it" in out
    assert "Traceback" not in out
    assert not (_snapshot(cache, "test/whisper") / "model.bin").exists()
    blobs = cache / "models--test--whisper/blobs"  # named by the hub's etag: the sha256 it recorded
    assert not (blobs / hashlib.sha256(weights).hexdigest()).exists(), "the bad blob is gone"
    assert (blobs / _git_blob(b"{}")).exists(), "a good file stays"


async def test_an_unreachable_hub_is_one_clear_line(tmp_path):
    code, out = await _models(_env(f"http://127.0.0.1:{free_port()}", tmp_path / "hub"))
    assert code == 2, out[-3000:]
    assert "hub model test/whisper: the hub at http://127.0.0.1:" in out and "cannot be reached" in out
    assert "Traceback" not in out


@pytest.mark.skipif(importlib.util.find_spec("spacy") is not None, reason="spaCy is installed here")
def test_the_torch_tts_without_its_phonemiser_says_what_to_install():
    from rich.console import Console

    from services.tts.models import prepare_phonemiser

    with pytest.raises(ProvisionError, match=r"torch TTS backend needs kokoro .*pip install 'halfsec\[gpu\]'"):
        prepare_phonemiser(Console())
