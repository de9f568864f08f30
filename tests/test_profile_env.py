"""HALFSEC_PROFILE picks the profile wherever none is named, and a .env in the working directory
fills what the environment leaves unset (LIVEKIT_*, HALFSEC_*): the way operators configure it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from configs import load_settings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_profile_env_picks_the_default_profile(monkeypatch):
    monkeypatch.setenv("HALFSEC_PROFILE", "gpu-24gb")
    assert load_settings().profile == "gpu-24gb"
    assert load_settings("cpu").profile == "cpu"  # a named profile wins, and keeps its name
    monkeypatch.delenv("HALFSEC_PROFILE")
    assert load_settings().profile == "cpu"


def _plan(cwd, env: dict[str, str]) -> dict:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("HALFSEC_", "LIVEKIT_"))}, **env}
    out = subprocess.run(
        [sys.executable, "-m", "agent.cli", "plan", "--json"],
        cwd=cwd,
        env={**env, "PYTHONPATH": REPO},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_the_cli_reads_dotenv_and_the_environment_wins(tmp_path):
    box, other = tmp_path / "box", tmp_path / "other"
    box.mkdir(), other.mkdir()
    (box / ".env").write_text("# the operator's box\nHALFSEC_PROFILE=gpu-24gb\nHALFSEC_GPU__GPU_GB=24\n")
    plan = _plan(box, {})
    assert plan["profile"] == "gpu-24gb" and plan["gpu_gb"] == 24
    plan = _plan(box, {"HALFSEC_GPU__GPU_GB": "80"})
    assert plan["profile"] == "gpu-24gb" and plan["gpu_gb"] == 80
    assert _plan(other, {})["profile"] == "cpu"  # no .env there
