"""The VRAM plan: what every GPU service takes, against the budget (`halfsec plan`).

`plan_vram` is a pure function of the settings, the budget and the card's size, all in GiB. It
lists Whisper's weights and workspace, Kokoro's, one CUDA context per GPU process, and vLLM's
weights, KV cache (max_num_seqs calls of max_model_len tokens each) and activation headroom, from
the figures in `vram_facts.py`. vLLM's --gpu-memory-utilization is a fraction of the whole *card*
(vLLM reserves card x fraction for weights, KV cache and activations; its CUDA context is outside
it), so vLLM's share of the budget is divided by the card's size: on an 80 GB card a 24 GiB plan
confines vLLM to about a tenth of it.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from configs import Settings

from . import vram_facts as facts

MIN_MODEL_LEN = 256  # llm.max_model_len's lower bound in the settings schema


class PlanError(ValueError):
    """Settings the plan has no figures for (an unknown model on the GPU). One line."""


@dataclass(frozen=True)
class Component:
    name: str
    gib: float
    service: str  # "asr", "tts" or "llm"
    source: str  # how the figure was reached
    vllm_share: bool = False  # inside vLLM's --gpu-memory-utilization (weights, KV, activations)


@dataclass
class Plan:
    profile: str
    budget_gb: float  # the budget the plan is held to (never more than the card)
    gpu_gb: float | None  # the card; None when no service runs on a GPU
    components: list[Component] = field(default_factory=list)
    calls: int = 0  # concurrent calls the KV cache holds ...
    context_tokens: int = 0  # ... at this many tokens each
    vllm_gpu_memory_utilization: float | None = None
    fits: bool = True
    advice: str = ""  # what to shrink, when it does not fit
    note: str = ""

    @property
    def total_gb(self) -> float:
        return sum(c.gib for c in self.components)

    @property
    def vllm_share_gb(self) -> float:
        return sum(c.gib for c in self.components if c.vllm_share)

    @property
    def uses_gpu(self) -> bool:
        return self.gpu_gb is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "total_gb": round(self.total_gb, 2),
            "budget_gb": round(self.budget_gb, 2),
            "gpu_gb": None if self.gpu_gb is None else round(self.gpu_gb, 2),
            "fits": self.fits,
            "components": {c.name: round(c.gib, 3) for c in self.components},
            "concurrent_calls": self.calls,
            "context_tokens": self.context_tokens,
            "vllm_gpu_memory_utilization": self.vllm_gpu_memory_utilization,
            "advice": self.advice,
            "note": self.note,
        }


def plan_vram(settings: Settings, *, budget_gb: float | None = None, gpu_gb: float | None = None) -> Plan:
    """The plan for these settings. `budget_gb`/`gpu_gb` override `gpu.budget_gb`/`gpu.gpu_gb`;
    with no card size at all the card is taken to be the budget."""
    budget = settings.gpu.budget_gb if budget_gb is None else budget_gb
    card = gpu_gb or settings.gpu.gpu_gb or budget
    if budget <= 0 or card <= 0:
        raise PlanError(f"the budget and the card must be positive (got budget {budget:g}, card {card:g} GiB)")
    on_gpu = {
        "asr": settings.asr.device != "cpu",  # "auto" takes the GPU when there is one
        "tts": settings.tts.device == "cuda",
        "llm": settings.llm.device == "cuda",
    }
    if not any(on_gpu.values()):
        return Plan(settings.profile, budget, None, note="no service runs on a GPU in this profile: nothing to plan")

    plan = Plan(settings.profile, min(budget, card), card)
    if card < budget:
        plan.note = f"the card ({card:g} GiB) is smaller than gpu.budget_gb ({budget:g}): planned to the card"
    if on_gpu["asr"]:
        plan.components += _asr(settings)
    if on_gpu["tts"]:
        plan.components += _tts(settings)
    if on_gpu["llm"]:
        _llm(settings, plan)
    plan.fits = plan.total_gb <= plan.budget_gb and (not on_gpu["llm"] or plan.calls >= 1)
    if not plan.fits:
        plan.advice = plan.advice or _advice(settings, plan)
        if (plan.vllm_gpu_memory_utilization or 0) >= 1:  # more than the card: no such setting
            plan.vllm_gpu_memory_utilization = None
    return plan


def spare_calls(settings: Settings, plan: Plan) -> int:
    """How many more calls of llm.max_model_len the budget left unplanned would hold."""
    if not plan.uses_gpu or settings.llm.device != "cuda" or settings.llm.gpu_memory_utilization is not None:
        return 0
    per_call = settings.llm.max_model_len * _kv_gib_per_token(settings)
    return max(int((plan.budget_gb - plan.total_gb) // per_call), 0)


def _kv_gib_per_token(settings: Settings) -> float:
    model = _lookup(facts.LLM_FACTS, settings.llm.model, "llm.model")
    return model.kv_bytes_per_token(facts.KV_ELEMENT_BYTES) / facts.GIB


def _asr(settings: Settings) -> list[Component]:
    a = settings.asr
    params = _lookup(facts.ASR_PARAMS, a.model, "asr.model")
    storage = a.compute_type.split("_")[0]
    if storage not in facts.CT2_WEIGHT_BYTES:
        raise PlanError(f"asr.compute_type {a.compute_type!r}: no weight size known for {storage!r}")
    size = params * facts.CT2_WEIGHT_BYTES[storage] / facts.GIB
    work = facts.ASR_WORKSPACE_GIB_PER_WORKER * a.num_workers
    return [
        Component("asr CUDA context", facts.CUDA_CONTEXT_GIB, "asr", "measured (gpu_probe, H200), per process"),
        Component(
            f"asr weights ({a.compute_type})",
            size,
            "asr",
            f"{params / 1e6:.0f} M params x {facts.CT2_WEIGHT_BYTES[storage]} B",
        ),
        Component(
            f"asr workspace ({a.num_workers} worker{'s' if a.num_workers > 1 else ''})",
            work,
            "asr",
            f"estimate, {facts.ASR_WORKSPACE_GIB_PER_WORKER:g} GiB per worker",
        ),
    ]


def _tts(settings: Settings) -> list[Component]:
    params = _lookup(facts.TTS_PARAMS, settings.tts.model, "tts.model")
    return [
        Component("tts CUDA context", facts.CUDA_CONTEXT_GIB, "tts", "measured (gpu_probe, H200), per process"),
        Component(
            "tts weights (fp32)",
            params * facts.TTS_WEIGHT_BYTES / facts.GIB,
            "tts",
            f"{params / 1e6:.0f} M params x {facts.TTS_WEIGHT_BYTES} B",
        ),
        Component("tts workspace", facts.TTS_WORKSPACE_GIB, "tts", "estimate"),
    ]


def _llm(settings: Settings, plan: Plan) -> None:
    o = settings.llm
    model = _lookup(facts.LLM_FACTS, o.model, "llm.model")
    per_call = o.max_model_len * _kv_gib_per_token(settings)
    fixed = model.weights_gib + facts.VLLM_ACTIVATION_GIB
    card = plan.gpu_gb or plan.budget_gb
    if o.gpu_memory_utilization is None:
        kv = o.max_num_seqs * per_call
        share = fixed + kv
        utilization = max(math.floor(share / card * 1000) / 1000, 0.001)  # never above the share
        kv_name, plan.calls = f"llm KV cache ({o.max_num_seqs} calls x {o.max_model_len} tokens)", o.max_num_seqs
    else:  # the operator's fraction: vLLM fills whatever it leaves after weights and activations
        utilization = o.gpu_memory_utilization
        share = utilization * card
        kv = share - fixed
        plan.calls = max(int(kv // per_call), 0)
        kv_name = (
            f"llm KV cache (llm.gpu_memory_utilization {utilization:g}: {plan.calls} calls x {o.max_model_len} tokens)"
        )
        if kv < per_call:
            plan.advice = (
                f"llm.gpu_memory_utilization {utilization:g} gives vLLM {share:.2f} GiB of the "
                f"{card:g} GiB card, too little for its weights, activations and one "
                f"{o.max_model_len}-token call: unset it and let the plan compute it"
            )
    plan.context_tokens = o.max_model_len
    plan.vllm_gpu_memory_utilization = utilization
    plan.components += [
        Component("llm CUDA context", facts.CUDA_CONTEXT_GIB, "llm", "measured (gpu_probe, H200), per process"),
        Component("llm weights", model.weights_gib, "llm", "vLLM's load log (public)", True),
        Component(
            kv_name, max(kv, 0.0), "llm", f"{model.kv_bytes_per_token(facts.KV_ELEMENT_BYTES):,} B a token", True
        ),
        Component("llm activations + CUDA graphs", facts.VLLM_ACTIVATION_GIB, "llm", "estimate", True),
    ]


def _advice(settings: Settings, plan: Plan) -> str:
    """What to shrink, with numbers that would fit."""
    over = plan.total_gb - plan.budget_gb
    head = f"the plan needs {plan.total_gb:.2f} GiB, {over:.2f} over the {plan.budget_gb:g} GiB budget"
    kv = next((c for c in plan.components if c.name.startswith("llm KV cache")), None)
    if kv is None:  # no vLLM on the GPU: only the speech models are left to move
        return f"{head}: run asr or tts on the CPU (asr.device / tts.device: cpu) or raise gpu.budget_gb"
    o = settings.llm
    if o.gpu_memory_utilization is not None:  # the operator's fraction sized vLLM, not the plan
        share = plan.vllm_share_gb
        card = plan.gpu_gb or plan.budget_gb
        # floored: a fraction rounded up to the printed digits would be over again
        most = math.floor(max(plan.budget_gb - (plan.total_gb - share), 0) / card * 1000) / 1000
        return (
            f"{head}: llm.gpu_memory_utilization {o.gpu_memory_utilization:g} gives vLLM "
            f"{share:.2f} GiB of the {card:g} GiB card; lower it to {most:.3f} or less, "
            f"or unset it and let the plan compute it"
        )
    room = plan.budget_gb - (plan.total_gb - kv.gib)
    per_token = _kv_gib_per_token(settings)
    calls = int(room // (o.max_model_len * per_token)) if room > 0 else 0
    if calls < 1:
        biggest = max(plan.components, key=lambda c: c.gib)
        return (
            f"{head}, {plan.total_gb - kv.gib:.2f} GiB of it before any KV cache: pick a smaller "
            f"llm.model (the largest part is {biggest.name}, {biggest.gib:.2f} GiB), run asr or tts "
            f"on the CPU (asr.device / tts.device: cpu), or raise gpu.budget_gb"
        )
    options = [f"llm.max_num_seqs to {calls} (at {o.max_model_len} tokens)"]
    context = int(room / (o.max_num_seqs * per_token)) // MIN_MODEL_LEN * MIN_MODEL_LEN
    if context >= MIN_MODEL_LEN:
        options.append(f"llm.max_model_len to {context} (for {o.max_num_seqs} calls)")
    return f"{head}: lower {' or '.join(options)}, pick a smaller llm.model, or raise gpu.budget_gb"


def _lookup(table: dict[str, Any], value: str, key: str) -> Any:
    name = facts.model_key(value)
    if name not in table:
        raise PlanError(f"{key} {value!r}: no VRAM figures for {name!r}; add them to services/vram_facts.py")
    return table[name]


@functools.cache
def detect_gpu_gib() -> float | None:
    """The first visible card's memory in GiB, from nvidia-smi; None without one. Asked once per
    process: the services' start and vLLM's command line both plan."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    cmd = [exe, "--query-gpu=memory.total", "--format=csv,noheader,nounits"]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    if visible:
        cmd += ["-i", visible]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True).stdout
        return float(out.split()[0]) / 1024  # MiB
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def current_plan(settings: Settings, *, budget_gb: float | None = None, gpu_gb: float | None = None) -> Plan:
    """The plan on this machine: the card's size from `gpu_gb`, then `gpu.gpu_gb`, then nvidia-smi."""
    return plan_vram(settings, budget_gb=budget_gb, gpu_gb=gpu_gb or settings.gpu.gpu_gb or detect_gpu_gib())


def render_plan(plan: Plan, settings: Settings, out: Console) -> None:
    """The plan as `halfsec plan` prints it: a table of components against the budget."""
    if not plan.uses_gpu:
        out.print(f"VRAM plan for {plan.profile}: {plan.note}")
        return
    table = Table(title=f"VRAM plan: {plan.profile}, {plan.budget_gb:g} GiB budget on a {plan.gpu_gb:g} GiB card")
    table.add_column("component")
    table.add_column("GiB", justify="right")
    table.add_column("from")
    for c in plan.components:
        table.add_row(c.name, f"{c.gib:.2f}", c.source)
    table.add_section()
    table.add_row("total", f"{plan.total_gb:.2f}", "fits" if plan.fits else "[red]over budget[/]")
    table.add_row("budget", f"{plan.budget_gb:.2f}", f"unplanned {plan.budget_gb - plan.total_gb:.2f}")
    out.print(table)
    if plan.calls:
        spare = spare_calls(settings, plan)
        out.print(
            f"KV cache: {plan.calls} concurrent calls of {plan.context_tokens} tokens"
            + (f" (the unplanned rest would hold {spare} more)" if spare else "")
        )
    if plan.fits and plan.vllm_gpu_memory_utilization is not None:
        out.print(
            f"vLLM --gpu-memory-utilization {plan.vllm_gpu_memory_utilization:g} "
            f"(a fraction of the {plan.gpu_gb:g} GiB card)"
        )
    if plan.note:
        out.print(plan.note)
