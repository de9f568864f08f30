"""`halfsec services --only NAME`: one service alone, as each container of deploy/compose.yaml runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from configs import load_settings
from tests.conftest import required
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[1]


def test_only_the_named_service_starts_and_sigterm_stops_it(tmp_path):
    settings = load_settings("cpu")
    required(settings)
    (tmp_path / "models").symlink_to(settings.models_dir)  # the real models; logs of our own
    env = {
        **os.environ,
        "HALFSEC_CACHE_DIR": str(tmp_path),
        "HALFSEC_ASR__PORT": str(free_port()),
        "HALFSEC_TTS__PORT": str(free_port()),
        "HALFSEC_LLM__PORT": str(free_port()),
    }
    cmd = [sys.executable, "-m", "agent.cli", "services", "--profile", "cpu", "--only", "tts"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        for line in proc.stderr:
            if "services up" in line:
                break
        assert "services up (tts)" in line, line
        proc.send_signal(signal.SIGTERM)  # what `docker stop` sends
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["tts.log"]
