"""What the target card itself says, for the VRAM plan and the ASR's window rule on a GPU.

Run on the operator's card, beside nothing else: `python -m services.gpu_probe [--json]`. It needs
torch with CUDA and transformers (the torch TTS backend's environment), not the models' weights:

- the card (nvidia-smi) and the plan `halfsec plan --profile gpu-24gb` makes for it;
- what one service process costs before it holds any model: the CUDA context, then cuBLAS's
  handle and workspace after a first fp16 matrix product (device memory in use, from nvidia-smi,
  with the process alive; `vram_facts.CUDA_CONTEXT_GIB` is this figure);
- what one Whisper decode costs over Whisper's full 30 s window, for the production model's shape
  (large-v3-turbo: 32 encoder layers, 4 decoder layers) and tiny.en's: the encoder's time alone
  and for 4 windows at once, the decoder's time a token, and the memory beyond the weights at
  the peak (one window encoded and decoded; four windows encoded). The models are built from
  their published shapes with random weights: in fp16 on a GPU the time and memory of a
  forward pass do not depend on the weights' values, and the decoder is stepped a fixed number of
  tokens. PyTorch's implementation, not CTranslate2's (the service's runtime), so the figures
  are an order of magnitude for the window rule (`asr.min_window_s`), not the service's own.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

MIB = 1024**2


def whisper_shape(width: int, encoder_layers: int, heads: int, mels: int, vocab: int) -> dict[str, int]:
    """A WhisperConfig's sizes: 4 decoder layers and feed-forwards 4x the width in both models."""
    return dict(
        d_model=width,
        encoder_layers=encoder_layers,
        decoder_layers=4,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=4 * width,
        decoder_ffn_dim=4 * width,
        num_mel_bins=mels,
        vocab_size=vocab,
    )


# Published shapes (the models' config.json on the hub).
WHISPER_SHAPES: dict[str, dict[str, int]] = {
    "large-v3-turbo": whisper_shape(1280, encoder_layers=32, heads=20, mels=128, vocab=51866),
    "tiny.en": whisper_shape(384, encoder_layers=4, heads=6, mels=80, vocab=51864),
}
WINDOW_FRAMES = 3000  # Whisper's 30 s of 10 ms mel frames
PROMPT_TOKENS = 4  # start of transcript, language, task, no timestamps
DECODE_TOKENS = 32  # about a sentence


def smi(query: str) -> list[str]:
    out = subprocess.run(
        ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits", "-i", "0"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return [v.strip() for v in out.strip().split(",")]


def used_mib() -> float:
    return float(smi("memory.used")[0])


def context_cost() -> dict[str, float]:
    """Device memory a fresh process holds after CUDA's start, then after a first fp16 product."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CONTEXT_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin and child.stdout
    idle = used_mib()
    marks: dict[str, float] = {}
    for stage in ("context", "cublas"):
        reserved = float(child.stdout.readline())
        marks[f"{stage}_mib"] = used_mib() - idle
        marks[f"{stage}_torch_reserved_mib"] = reserved / MIB
        child.stdin.write("\n")
        child.stdin.flush()
    child.wait(timeout=60)
    return {"idle_used_mib": idle, **marks}


_CONTEXT_CHILD = """
import sys, torch
torch.cuda.init(); torch.zeros(1, device="cuda"); torch.cuda.synchronize()
print(torch.cuda.memory_reserved(), flush=True); sys.stdin.readline()
a = torch.randn(1024, 1024, device="cuda", dtype=torch.float16); (a @ a).sum().item()
print(torch.cuda.memory_reserved(), flush=True); sys.stdin.readline()
"""


def timed(fn: Any, repeats: int) -> list[float]:
    import torch

    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def whisper_costs(name: str, shape: dict[str, int]) -> dict[str, Any]:
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    config = WhisperConfig(**shape, max_source_positions=1500, max_target_positions=448)
    with torch.device("cuda"):
        model = WhisperForConditionalGeneration(config).half().eval()
    weights_mib = (torch.cuda.memory_allocated() - before) / MIB
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    mel = torch.randn(1, shape["num_mel_bins"], WINDOW_FRAMES, device="cuda", dtype=torch.float16)
    mel4 = mel.repeat(4, 1, 1)
    encoder, decoder = model.model.encoder, model.model.decoder

    @torch.inference_mode()
    def encode(x: torch.Tensor = mel) -> torch.Tensor:
        return encoder(x).last_hidden_state

    states = encode()

    @torch.inference_mode()
    def decode() -> None:
        ids = torch.full((1, PROMPT_TOKENS), 1, device="cuda", dtype=torch.long)
        out = decoder(input_ids=ids, encoder_hidden_states=states, use_cache=True)
        for _ in range(DECODE_TOKENS):
            nxt = model.proj_out(out.last_hidden_state[:, -1:]).argmax(-1)
            out = decoder(
                input_ids=nxt, encoder_hidden_states=states, past_key_values=out.past_key_values, use_cache=True
            )

    def peak_beyond_weights(fn: Any) -> float:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / MIB - weights_mib

    enc = timed(encode, 20)
    dec = timed(decode, 5)
    one_window_mib = peak_beyond_weights(lambda: (encode(), decode()))
    enc4 = timed(lambda: encode(mel4), 10)
    result = {
        "model_shape": name,
        "params_m": round(params_m, 1),
        "weights_fp16_mib": round(weights_mib),
        "encoder_30s_ms_p50": round(statistics.median(enc), 2),
        "encoder_30s_x4_ms_p50": round(statistics.median(enc4), 2),
        "decoder_ms_per_token": round(statistics.median(dec) / (DECODE_TOKENS + 1), 2),
        "decode_30s_window_32_tokens_ms": round(statistics.median(enc) + statistics.median(dec), 1),
        "workspace_one_window_mib": round(one_window_mib),
        "workspace_four_windows_mib": round(peak_beyond_weights(lambda: encode(mel4))),
    }
    return result


def plan_for_card() -> dict[str, Any]:
    from configs import load_settings
    from services.plan import current_plan

    settings = load_settings("gpu-24gb")
    plan = current_plan(settings)
    return {
        "gpu_gib_detected": plan.gpu_gb,
        "budget_gib": plan.budget_gb,
        "total_gib": round(plan.total_gb, 2),
        "fits": plan.fits,
        "vllm_gpu_memory_utilization": plan.vllm_gpu_memory_utilization,
        "components": {c.name: round(c.gib, 2) for c in plan.components},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    args = parser.parse_args()
    import torch

    name, total, driver = smi("name,memory.total,driver_version")
    report: dict[str, Any] = {
        "card": name,
        "memory_total_mib": float(total),
        "driver": driver,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
    report["plan"] = plan_for_card()
    report["process_overhead"] = context_cost()
    report["whisper"] = [whisper_costs(n, s) for n, s in WHISPER_SHAPES.items()]
    if args.json:
        print(json.dumps(report))
        return
    for key, value in report.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
