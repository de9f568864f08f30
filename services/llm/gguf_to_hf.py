#!/usr/bin/env python3
"""Convert a llama-architecture GGUF (e.g. SmolLM2-135M-Instruct Q4_1) into an HF model directory.

Usage: python gguf_to_hf.py SRC.gguf OUT_DIR

vLLM's CPU build cannot serve a GGUF directly, so the weights are dequantised to bf16 and written
with the tokenizer, chat template and generation config as an ordinary HF checkpoint.
Standalone on purpose: it runs inside the vLLM venv, which has none of the project's modules.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# Everything needed is in the GGUF; never let transformers reach for the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Keep output to one line: silence transformers' bars and the raw tqdm bar of its GGUF loader.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

GGUF_MAGIC = b"GGUF"


class ConversionError(Exception):
    """A problem with the input that the user can fix; printed without a traceback."""


def check_source(src: Path) -> None:
    if not src.is_file():
        raise ConversionError(f"source not found: {src}")
    with src.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise ConversionError(f"not a GGUF file (bad magic): {src}")
    # Parsing the header (memory-mapped, cheap) catches truncated files before the slow part.
    from gguf import GGUFReader

    try:
        field = GGUFReader(src).get_field("general.architecture")
        arch = field.contents() if field is not None else None
    except Exception as exc:  # gguf raises assorted ValueError/IndexError on damaged files
        raise ConversionError(f"unreadable GGUF {src}: {exc}") from exc
    # The output is a LlamaForCausalLM; other architectures would need their own model class.
    if arch != "llama":
        raise ConversionError(f"only llama-architecture GGUFs are supported, got {arch!r}")


def convert(src: Path, work: Path) -> None:
    """Write the HF-format model for `src` into the (empty) directory `work`."""
    # Heavy imports here so that argument errors are reported instantly.
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    # transformers resolves gguf_file relative to a "model id", so split the path.
    repo, name = str(src.parent), src.name
    config = AutoConfig.from_pretrained(repo, gguf_file=name)
    config.architectures = ["LlamaForCausalLM"]
    config.dtype = torch.bfloat16  # vLLM picks its compute dtype from here

    # A GGUF-loaded model is flagged as quantised and save_pretrained refuses it, so build a plain
    # model instead. The meta device skips allocating and randomly initialising weights we replace.
    with torch.device("meta"):
        model = LlamaForCausalLM(config)

    # transformers' loader dequantises each tensor, maps GGUF names to HF names and undoes the
    # rotary permutation llama.cpp applies to q/k projections; the model only supplies the names.
    tensors: dict[str, torch.Tensor] = load_gguf_checkpoint(
        str(src), return_tensors=True, model_to_load=model, torch_dtype=torch.bfloat16
    )["tensors"]
    result = model.load_state_dict(tensors, strict=False, assign=True)
    # The GGUF has no output.weight when the head shares the embedding; tying restores it.
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    missing, unexpected = set(result.missing_keys) - tied, result.unexpected_keys
    if missing or unexpected:
        raise ConversionError(f"weight mismatch: missing={sorted(missing)} unexpected={unexpected}")
    model.tie_weights()
    model.eval()
    # Writes config.json, generation_config.json (bos/eos/pad from the GGUF) and model.safetensors.
    model.save_pretrained(work, safe_serialization=True)

    # The GGUF carries the BPE vocab, special tokens and the ChatML template; the tokenizer
    # rebuilt from it saves them as tokenizer.json/tokenizer_config.json/chat_template.jinja.
    tokenizer = AutoTokenizer.from_pretrained(repo, gguf_file=name)
    if not tokenizer.chat_template:
        raise ConversionError("GGUF has no tokenizer.chat_template; a chat server needs one")
    tokenizer.save_pretrained(work)


def make_readable(work: Path) -> None:
    """mkdtemp makes a 0700 directory (safetensors a 0600 file); the server may be another user."""
    umask = os.umask(0)
    os.umask(umask)
    work.chmod(0o777 & ~umask)
    for path in work.iterdir():
        path.chmod(0o666 & ~umask)


def install(work: Path, out: Path) -> None:
    """Move the finished directory into place so readers never see a half-written one."""
    if not out.exists():
        work.rename(out)
        return
    # rename() cannot replace a non-empty directory: swap the old one aside first.
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    out.rename(old / out.name)
    work.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {Path(argv[0]).name} SRC.gguf OUT_DIR", file=sys.stderr)
        return 2
    src, out = Path(argv[1]).resolve(), Path(argv[2]).resolve()
    started = time.monotonic()
    try:
        check_source(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Same parent directory as OUT_DIR, so the final rename is atomic (same filesystem).
        work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
        try:
            convert(src, work)
            make_readable(work)
            install(work, out)
        finally:
            shutil.rmtree(work, ignore_errors=True)  # no-op after a successful rename
    except ConversionError as exc:
        print(f"gguf_to_hf: error: {exc}", file=sys.stderr)
        return 1
    print(f"gguf_to_hf: wrote {out} in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
