"""halfsec installed as a wheel (not editable), run from a directory outside the source tree.

The wheel is built from a copy of the tree, which is deleted before anything runs: a file read
relative to a source tree, or data left out of the package, fails here. The fresh venv borrows
its dependencies from the running one (a `.pth`, added after the install): nothing is installed
but halfsec (the wheel's build fetches setuptools, from pip's cache after the first run). The
demo call starts the services from the installed copy, vLLM included (~1.5 min on 2 cores).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from configs import load_settings
from tests.conftest import required
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("agent", "services", "configs", "latency", "pyproject.toml", "README.md")
# Data files the code reads from its own package, as the wheel must hold them.
PACKAGE_DATA = (
    "agent/kiosk/static/index.html",
    "configs/cpu.yaml",
    "configs/gpu-24gb.yaml",
    "latency/dashboard/static/index.html",
    "services/llm/templates/chatml-tools.jinja",
    "services/tts/bench_replies.txt",
)
PROBE = "import agent, configs, latency, services as s; print(*(m.__file__ for m in (agent, configs, latency, s)))"


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("install")
    src, dist, venv, elsewhere = tmp / "src", tmp / "dist", tmp / "venv", tmp / "elsewhere"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in SOURCES:
        _copy(REPO / name, src / name, skip)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    built = _run([*pip, "wheel", "--no-deps", "-w", str(dist), str(src)], tmp, env, 300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = dist.glob("halfsec-*.whl")
    shutil.rmtree(src)  # from here on, no source tree but the repo's own, which is not on the path
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    done = _run([*pip, "--python", str(venv / "bin/python"), "install", "--no-deps", str(wheel)], tmp, env, 300)
    assert done.returncode == 0, done.stderr[-2000:]
    # only now: pip must neither see nor touch the borrowed site-packages (and its editable halfsec)
    (purelib,) = (venv / "lib").glob("python3*/site-packages")
    (purelib / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    elsewhere.mkdir()
    return {"wheel": wheel, "venv": venv, "purelib": purelib, "cwd": elsewhere, "env": env, "tmp": tmp}


def _copy(src: Path, dst: Path, ignore) -> None:
    if src.is_dir():
        shutil.copytree(src, dst, ignore=ignore)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def test_the_wheel_holds_every_data_file_the_code_reads(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    assert [f for f in PACKAGE_DATA if f not in names] == []


def test_the_installed_copy_is_what_runs_outside_the_source_tree(installed):
    probe = _run([str(installed["venv"] / "bin/python"), "-c", PROBE], installed["cwd"], installed["env"], 60)
    assert probe.returncode == 0, probe.stderr[-2000:]
    files = probe.stdout.split()
    assert len(files) == 4 and all(Path(f).is_relative_to(installed["purelib"]) for f in files), files


def test_halfsec_plan_runs_from_the_install(installed):
    halfsec = str(installed["venv"] / "bin/halfsec")
    done = _run([halfsec, "plan", "--profile", "gpu-24gb", "--gpu-gb", "24"], installed["cwd"], installed["env"], 120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "vllm" in done.stdout.lower(), done.stdout


def test_a_demo_call_runs_from_the_install(installed):
    """One turn through services started from the installed package, on ports of their own (a
    service already up on the profile's ports would otherwise be reused, not started)."""
    settings = load_settings("cpu")  # from the repo root: where `make setup` put the vLLM venv
    required(settings)
    vllm_python = settings.llm_python()
    if not vllm_python.exists():
        pytest.fail(f"no vLLM interpreter at {vllm_python} (make setup)")
    cache = installed["tmp"] / "cache"  # the models and speech of the real cache; logs of its own
    cache.mkdir()
    for name in ("models", "speech"):
        (cache / name).symlink_to(settings.cache_dir / name)
    env = {
        **installed["env"],
        "HALFSEC_CACHE_DIR": str(cache),
        "HALFSEC_LLM__PYTHON": str(vllm_python),
        "HALFSEC_ASR__PORT": str(free_port()),
        "HALFSEC_TTS__PORT": str(free_port()),
        "HALFSEC_LLM__PORT": str(free_port()),
    }
    halfsec = str(installed["venv"] / "bin/halfsec")
    out = installed["cwd"] / "demo"
    cmd = [halfsec, "demo", "--profile", "cpu", "--turns", "1", "--out", str(out)]
    done = _run(cmd, installed["cwd"], env, 540)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert (out / "turns.jsonl").read_text().strip(), done.stderr[-2000:]
    # vLLM was given the chat template from the installed package (it logs its arguments)
    template = installed["purelib"] / "services/llm/templates/chatml-tools.jinja"
    assert str(template) in (cache / "logs/llm.log").read_text()
