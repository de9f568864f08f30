"""vLLM's command line from settings (the gpu-24gb one can be checked without a GPU), and the
CPU confinement the supervisor applies to it."""

import os
import sys

import pytest

from configs import load_settings
from services.llm.launch import vllm_command, vllm_env
from services.supervisor import ServiceSpec, Supervisor


def flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_gpu_profile_command():
    s = load_settings("gpu-24gb")
    cmd = vllm_command(s)
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert flag(cmd, "--model") == "Qwen/Qwen2.5-7B-Instruct-AWQ"
    assert flag(cmd, "--quantization") == "awq_marlin"
    assert flag(cmd, "--tool-call-parser") == "hermes" and "--enable-auto-tool-choice" in cmd
    assert flag(cmd, "--max-model-len") == "4096" and "--enable-prefix-caching" in cmd
    assert vllm_env(s).get("HF_HUB_OFFLINE") == os.environ.get("HF_HUB_OFFLINE")  # hub model: left alone


def test_cpu_profile_command_is_offline_and_eager():
    s = load_settings("cpu")
    cmd, env = vllm_command(s), vllm_env(s)
    assert flag(cmd, "--model").endswith("models/smollm2-135m-instruct")
    assert "--enforce-eager" in cmd and "--quantization" not in cmd
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert s.llm.cpu_affinity == [0]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to confine to one")
async def test_supervisor_confines_a_service_and_its_children(tmp_path):
    # the child starts a grandchild and both report the cores they may use
    code = (
        "import os, subprocess, sys, time;"
        "print(sorted(os.sched_getaffinity(0)), flush=True);"
        "subprocess.run([sys.executable, '-c', 'import os; print(sorted(os.sched_getaffinity(0)))']);"
        "time.sleep(30)"
    )
    spec = ServiceSpec("pinned", [sys.executable, "-c", code], "http://127.0.0.1:9/health", 2, cpus={0})
    sup = Supervisor([spec], tmp_path)
    with pytest.raises(Exception, match="not healthy"):
        await sup.start()  # it never becomes healthy; we only want its output
    assert (tmp_path / "pinned.log").read_text().split() == ["[0]", "[0]"]
