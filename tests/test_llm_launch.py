"""vLLM's command line from settings (the gpu-24gb one can be checked without a GPU), and the
CPU confinement the supervisor applies to it."""

import json
import os
import subprocess
import sys

import pytest

from configs import load_settings
from services.cpu_features import lists_bf16_flags
from services.llm import launch
from services.llm.launch import chat_template_path, vllm_command, vllm_env
from services.supervisor import ServiceSpec, Supervisor


def flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_a_cpu_without_a_cpp_compiler_starts_vllm_eager(monkeypatch, tmp_path, caplog):
    """vLLM's compiled graph needs a C++ compiler at start; without one its engine never starts."""
    monkeypatch.delenv("HALFSEC_LLM__EAGER", raising=False)
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    assert "--enforce-eager" in vllm_command(load_settings("cpu"))
    assert "no C++ compiler" in caplog.text
    assert "--enforce-eager" not in vllm_command(load_settings("gpu-24gb"))  # CUDA graphs: never dropped quietly
    monkeypatch.setenv("CXX", sys.executable)  # any executable stands for a compiler here
    assert "--enforce-eager" not in vllm_command(load_settings("cpu"))


def test_gpu_profile_command():
    s = load_settings("gpu-24gb")
    cmd = vllm_command(s)
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert flag(cmd, "--model") == "Qwen/Qwen2.5-7B-Instruct-AWQ"
    assert flag(cmd, "--quantization") == "awq_marlin"
    assert flag(cmd, "--tool-call-parser") == "hermes" and "--enable-auto-tool-choice" in cmd
    assert flag(cmd, "--max-model-len") == "4096" and "--enable-prefix-caching" in cmd
    assert vllm_env(s).get("HF_HUB_OFFLINE") == os.environ.get("HF_HUB_OFFLINE")  # hub model: left alone


def test_cpu_profile_command_is_offline_and_compiled(monkeypatch):
    monkeypatch.delenv("HALFSEC_LLM__EAGER", raising=False)  # the suite's own choice (conftest)
    monkeypatch.setenv("CXX", sys.executable)  # a compiler, whatever this machine has
    s = load_settings("cpu")
    cmd, env = vllm_command(s), vllm_env(s)
    assert flag(cmd, "--model").endswith("models/smollm2-135m-instruct")
    assert "--enforce-eager" not in cmd and "--quantization" not in cmd
    monkeypatch.setenv("HALFSEC_LLM__EAGER", "true")
    assert "--enforce-eager" in vllm_command(load_settings("cpu"))
    assert flag(cmd, "--block-size") == "32"  # whole blocks are what the prefix cache reuses
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert s.llm.cpu_affinity == [0]
    # halfsec's vLLM plugin, allowlisted (its hold routes load only so), with its short busy-wait
    assert env["VLLM_PLUGINS"] == "halfsec" and env["VLLM_SHM_BROADCAST_BUSY_LOOP_S"] == "0.002"


@pytest.mark.parametrize(("bf16", "dtype"), [(True, "bfloat16"), (False, "float32")])
def test_cpu_profile_runs_vllm_in_bf16_only_where_the_cpu_computes_in_it(monkeypatch, bf16, dtype):
    """Without bf16 instructions vLLM-cpu's bf16 matmuls take a slow path (configs/cpu.yaml)."""
    monkeypatch.delenv("HALFSEC_LLM__DTYPE", raising=False)  # the suite's own choice (conftest)
    monkeypatch.setattr(launch, "has_bf16_units", lambda: bf16)
    assert flag(vllm_command(load_settings("cpu")), "--dtype") == dtype
    assert flag(vllm_command(load_settings("gpu-24gb")), "--dtype") == "float16"  # a named dtype passes as it is


def test_the_plugin_joins_an_allowlist_the_operator_set(monkeypatch):
    monkeypatch.setenv("VLLM_PLUGINS", "their_plugin")
    assert vllm_env(load_settings("cpu"))["VLLM_PLUGINS"] == "their_plugin,halfsec"
    gpu = vllm_env(load_settings("gpu-24gb"))  # no hold, vLLM's own wait: the plugin not asked for
    assert gpu["VLLM_PLUGINS"] == "their_plugin" and "VLLM_SHM_BROADCAST_BUSY_LOOP_S" not in gpu


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


async def test_supervisor_lowers_a_services_priority_with_its_children(tmp_path):
    code = (
        "import os, subprocess, sys, time;"
        "print(os.nice(0), flush=True);"
        "subprocess.run([sys.executable, '-c', 'import os; print(os.nice(0))']);"
        "time.sleep(30)"
    )
    base = os.nice(0)
    spec = ServiceSpec("niced", [sys.executable, "-c", code], "http://127.0.0.1:9/health", 2, nice=7)
    sup = Supervisor([spec], tmp_path)
    with pytest.raises(Exception, match="not healthy"):
        await sup.start()
    assert (tmp_path / "niced.log").read_text().split() == [str(min(base + 7, 19))] * 2
    assert os.nice(0) == base  # the supervisor itself is untouched


def test_cpu_profile_renders_tools_with_our_template_and_hermes():
    # SmolLM2's own template has no tools: vLLM is given ours, and the parser for its format
    s = load_settings("cpu")
    cmd = vllm_command(s)
    template = flag(cmd, "--chat-template")
    assert template.endswith("services/llm/templates/chatml-tools.jinja") and os.path.isfile(template)
    assert flag(cmd, "--tool-call-parser") == "hermes" and "--enable-auto-tool-choice" in cmd
    assert "--chat-template" not in vllm_command(load_settings("gpu-24gb"))  # Qwen2.5's own has tools


def test_relative_paths_are_taken_from_the_working_directory_not_the_source_tree(monkeypatch, tmp_path):
    # an installed halfsec has no source tree: a path the operator gives means where they are
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HALFSEC_LLM__PYTHON", "vllm-venv/bin/python")
    monkeypatch.setenv("HALFSEC_LLM__CHAT_TEMPLATE", "mine.jinja")
    cmd = vllm_command(load_settings("cpu"))
    assert cmd[0] == str(tmp_path / "vllm-venv/bin/python")
    assert flag(cmd, "--chat-template") == str(tmp_path / "mine.jinja")


def test_a_missing_chat_template_is_refused_before_anything_starts(monkeypatch):
    from services.supervisor import ServiceError, service_specs

    monkeypatch.setenv("HALFSEC_LLM__PYTHON", sys.executable)
    monkeypatch.setenv("HALFSEC_LLM__CHAT_TEMPLATE", "no/such/template.jinja")
    with pytest.raises(
        ServiceError, match=r"chat template not found at .*no/such/template.jinja \(llm.chat_template\)"
    ):
        service_specs(load_settings("cpu"), "cpu")


_RENDER = """
import json, sys
from transformers import AutoTokenizer
model, ours = sys.argv[1:]
tok = AutoTokenizer.from_pretrained(model)
plain = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What time is it?"}]
tools = [{"type": "function", "function": {"name": "current_time", "description": "The time now.",
          "parameters": {"type": "object", "properties": {}}}}]
with_tools = plain + [
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
     "function": {"name": "current_time", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "3:04 PM"},
    {"role": "assistant", "content": "It is 3:04 PM."},
    {"role": "user", "content": "Thanks."},
]
def render(messages, tools, template):
    return tok.apply_chat_template(messages, tools=tools, chat_template=template, tokenize=False,
                                   add_generation_prompt=True)
ours = open(ours).read()
# the model's own template cannot render tool calls at all (it is why ours exists)
print(json.dumps({"plain": [render(plain, None, ours), render(plain, None, None)],
                  "tools": render(with_tools, tools, ours)}))
"""


@pytest.fixture(scope="module")
def rendered() -> dict:
    """Prompts from our template (and the model's own) as vLLM renders them: transformers, in
    vLLM's venv (the app's has no jinja)."""
    s = load_settings("cpu")
    if not s.llm_python().exists():
        pytest.skip(f"no vLLM interpreter at {s.llm_python()} (make setup)")
    model = s.model_path(s.llm.model)
    if not os.path.isdir(model):
        pytest.skip(f"no model at {model} (halfsec models)")
    out = subprocess.run(
        [str(s.llm_python()), "-c", _RENDER, model, str(chat_template_path(s))],
        capture_output=True,
        text=True,
        timeout=120,
        env=vllm_env(s),
        check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def test_our_template_is_the_models_own_without_tools(rendered):
    # so a profile that offers no tools prompts the model exactly as before
    ours, theirs = rendered["plain"]
    assert ours == theirs


def test_our_template_renders_tools_calls_and_results_in_the_hermes_format(rendered):
    system, rest = rendered["tools"].split("<|im_end|>\n", 1)
    assert system.startswith("<|im_start|>system\nBe brief.\n\n")  # the prompt first, then the tools
    assert '<tools>\n{"name": "current_time", "description": "The time now."' in system
    assert rest == (
        "<|im_start|>user\nWhat time is it?<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>\n{"name": "current_time", "arguments": {}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\n3:04 PM\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\nIt is 3:04 PM.<|im_end|>\n"
        "<|im_start|>user\nThanks.<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ("fpu avx2 avx512f avx512_vnni", False),  # Ice Lake: AVX-512, no bf16
        ("fpu avx2 avx512f avx512_bf16 avx512_vnni", True),  # Zen 4
        ("fpu avx512f amx_bf16 amx_tile amx_int8", True),  # Sapphire Rapids
        ("fpu avx2 xamx_bf16x", False),  # flags are whole words
    ],
)
def test_bf16_is_native_with_amx_or_avx512_bf16(flags, native):
    assert lists_bf16_flags(f"processor\t: 0\nflags\t\t: {flags}\n") is native
