"""Offline model provisioning and the clear errors when something is missing."""

import subprocess
import sys
import time

import pytest

from agent.sim.speech import artifacts as speech_artifacts
from configs import load_settings
from services.provision import ProvisionError, model_artifacts, provision, require


def test_second_run_does_nothing(settings):
    t0 = time.monotonic()
    everything = [*model_artifacts(settings), *speech_artifacts(settings)]
    assert provision(settings, everything) == []  # `make test` already provisioned everything
    assert time.monotonic() - t0 < 10
    assert all(a.present() for a in everything)


def test_missing_models_are_named(monkeypatch, tmp_path):
    monkeypatch.setenv("HALFSEC_CACHE_DIR", str(tmp_path))
    empty = load_settings("cpu")
    with pytest.raises(ProvisionError, match=r"missing models: whisper tiny\.en .*run `halfsec models`"):
        require(empty)


def test_a_truncated_model_is_not_taken_as_present(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("HALFSEC_CACHE_DIR", str(tmp_path))
    art = next(a for a in model_artifacts(load_settings("cpu")) if a.name == "whisper tiny.en")
    art.dest.mkdir(parents=True)
    for name in art.files:
        (art.dest / name).write_bytes(b"x")
    assert not art.present()
    assert art.problem() == "whisper tiny.en: model.bin is 1 bytes, expected 75537502"
    (art.dest / "config.json").write_bytes(b"")
    with (art.dest / "model.bin").open("r+b") as f:
        f.truncate(75537502)  # right size, sparse
    assert art.problem() == "whisper tiny.en: config.json is 0 bytes, expected some"


def test_asr_service_with_missing_model_fails_clearly(tmp_path):
    env = {"HALFSEC_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "services.asr.server"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "ASR model not found" in proc.stderr and "run `halfsec models`" in proc.stderr


def test_cli_reports_missing_models_in_one_line(tmp_path):
    env = {"HALFSEC_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", "demo"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("halfsec: error: missing models: whisper tiny.en")
