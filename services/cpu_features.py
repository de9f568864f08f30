"""What this CPU offers that a service picks its runtime by (the cpu profile's "where AMX" choices:
Kokoro's generator, tts.generator; vLLM's dtype, llm.dtype)."""

from __future__ import annotations

import platform
from pathlib import Path


def has_bf16_matrix_units() -> bool:
    """The CPU has AMX's bf16 tiles (Linux: the `amx_bf16` flag)."""
    if platform.system() != "Linux":
        return False
    try:
        return " amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
