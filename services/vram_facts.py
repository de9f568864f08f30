"""Every figure the VRAM plan (`services/plan.py`) is built from, each with where it comes from.

Model facts are keyed by the model's name (the last part of its hub id or directory, lower case).
"measured" means someone measured it and says where; "estimate" means nobody here has: no 7B
weights or vLLM GPU build could be had where this was written, and a GPU only briefly (see README,
"What was and wasn't run"). Replace an estimate with the figure the real process reports on the
target card (`python -m services.gpu_probe` measures what needs no weights).
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class LlmFacts:
    weights_gib: float  # what vLLM reports after loading ("Model loading took X GiB")
    layers: int  # config.json num_hidden_layers
    kv_heads: int  # config.json num_key_value_heads (grouped-query attention)
    head_dim: int  # config.json hidden_size / num_attention_heads

    def kv_bytes_per_token(self, element_bytes: int = 2) -> int:
        """A key and a value vector per layer per KV head; fp16/bf16 cache: 2 bytes an element."""
        return 2 * self.layers * self.kv_heads * self.head_dim * element_bytes


LLM_FACTS: dict[str, LlmFacts] = {
    # config.json of Qwen/Qwen2.5-7B-Instruct(-AWQ): num_hidden_layers 28, num_attention_heads 28,
    # num_key_value_heads 4, hidden_size 3584 -> head_dim 128; so 57,344 bytes (56 KiB) of fp16 KV
    # per token. Weights: the hub's two shards are 4.48 GB + 1.09 GB (5.19 GiB; embeddings and the
    # untied lm_head stay fp16, ~2 GiB of it); vLLM reported "Model loading took 5.29 GiB" for this
    # checkpoint in a public project's log (RTX 4060, awq_marlin). Not measured here.
    "qwen2.5-7b-instruct-awq": LlmFacts(weights_gib=5.29, layers=28, kv_heads=4, head_dim=128),
}

# Parameter counts; bytes per parameter come from the compute type (below).
ASR_PARAMS: dict[str, float] = {
    # openai/whisper-large-v3-turbo model card: 809 M parameters (32 encoder layers, 4 decoder
    # layers); the fp16 CTranslate2 model.bin of mobiuslabsgmbh/faster-whisper-large-v3-turbo
    # is 1.62 GB, i.e. 2 bytes a parameter.
    "faster-whisper-large-v3-turbo": 809e6,
}
TTS_PARAMS: dict[str, float] = {
    # hexgrad/Kokoro-82M: 82 M parameters; kokoro-v1_0.pth is 327 MB (fp32), and the torch
    # backend runs it in fp32.
    "kokoro-82m": 82e6,
}

# CTranslate2 compute types: the weight's storage type is the part before "_" ("int8_float16":
# int8 weights, fp16 activations). Layer norms and biases stay in float (a few MB, ignored).
CT2_WEIGHT_BYTES: dict[str, int] = {"int8": 1, "int16": 2, "float16": 2, "bfloat16": 2, "float32": 4}
TTS_WEIGHT_BYTES = 4  # the PyTorch Kokoro backend loads fp32 weights

# measured: what nvidia-smi shows for one process after CUDA's start and a first fp16 cuBLAS
# product, before any model (`python -m services.gpu_probe`; H200, driver 580.159, torch 2.11 /
# CUDA 13.0, 2026-12-04): 621 MiB for the context, 739 MiB with cuBLAS's handle and workspace,
# the same in two runs. Other cards and drivers differ by some tens of MiB; rerun the probe there.
CUDA_CONTEXT_GIB = 0.72

# estimate: CTranslate2's caching allocator for one decode worker: the encoder's activations over
# Whisper's 30 s window (1500 positions x 1280 dims x 32 layers, 20-head attention maps of
# 1500 x 1500 in fp16, ~90 MB a layer, freed between layers) and the decoder's own KV cache.
# PyTorch's large-v3-turbo in fp16 needed 85 MiB beyond its weights for one window and 216 MiB
# for four (`services/gpu_probe.py`, H200); CTranslate2's allocator keeps more cached, so the
# estimate stays a margin above that.
ASR_WORKSPACE_GIB_PER_WORKER = 0.5

# estimate: Kokoro's activations for one chunk of a few hundred phonemes, plus what PyTorch's
# caching allocator keeps around between requests.
TTS_WORKSPACE_GIB = 0.3

# estimate: inside vLLM's share, beside weights and KV cache: the profiling run's activation peak
# (vLLM logs "activation peak"; ~0.5 GiB for a 7B model at 2048 batched tokens, ~1.4 GiB reported
# at 8192), CUDA graphs captured for up to max_num_seqs sequences (~0.1-0.5 GiB) and the
# non-torch memory it adds (NCCL, sampler buffers). vLLM fills its share with KV cache after
# measuring these, so an estimate too high only gives it more KV cache, never more VRAM.
VLLM_ACTIVATION_GIB = 1.5

# A KV cache of fp16/bf16 elements (vLLM's --kv-cache-dtype auto for these models).
KV_ELEMENT_BYTES = 2


def model_key(value: str) -> str:
    """The name a model setting is looked up by: 'hf:Qwen/Qwen2.5-7B-Instruct-AWQ' ->
    'qwen2.5-7b-instruct-awq' (a local directory of the same name matches too)."""
    return value.removeprefix("hf:").rstrip("/").rsplit("/", 1)[-1].lower()
