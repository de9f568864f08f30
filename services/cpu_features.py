"""What this CPU offers that a service picks its runtime by (the cpu profile's "where bf16 is
native" choices: Kokoro's generator, tts.generator; vLLM's dtype, llm.dtype)."""

from __future__ import annotations

import platform
from pathlib import Path

# AMX's bf16 tiles (Sapphire Rapids and later Xeons) or AVX-512's bf16 dot products (Zen 4 and
# later, Cooper Lake). Without either, bf16 runs through conversions: on an AVX2 box vLLM's
# first token took 850-1070 ms in bf16 against 195-330 in float32 (docs/benchmarks.md).
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def has_bf16_units() -> bool:
    """The CPU computes in bf16 natively (Linux: one of `BF16_FLAGS` in /proc/cpuinfo)."""
    if platform.system() != "Linux":
        return False
    try:
        return lists_bf16_flags(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


def lists_bf16_flags(cpuinfo: str) -> bool:
    return not set(BF16_FLAGS).isdisjoint(cpuinfo.split())
