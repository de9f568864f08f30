"""`halfsec models` for a profile whose models are hub ids ("hf:owner/name"): fetch them once, on
the operator's machine, into the library cache the services read (HF_HOME / HF_HUB_CACHE), so a
service started with HF_HUB_OFFLINE=1 (the compose file's) never downloads at call time.

huggingface_hub does the transfer: its progress bars (in a terminal), and its resume of a transfer cut mid-file
(it asks for the rest with a Range request). A file already complete is not fetched again. What
the library does not do, this does: every file is checked against the hub's own record of it
(sha256 for LFS files, the git blob id for small ones) and a file that does not match is deleted.
Each service's module names the files of its repo it needs (`HUB_PATTERNS`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from configs import Settings
from configs.settings import HUB_PREFIX

from .provision import ProvisionError, sha256


@dataclass(frozen=True)
class HubFile:
    name: str
    size: int | None
    sha256: str | None  # LFS files
    blob_id: str | None  # git's sha1 of the blob: the others


def hub_repos(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Hub repo -> the file patterns its service loads, for each service whose model is a hub id."""
    from .asr.models import HUB_PATTERNS as asr
    from .llm.models import HUB_PATTERNS as llm
    from .tts.models import hub_patterns as tts

    wanted = {
        "asr": (settings.asr.model, asr),
        "tts": (settings.tts.model, tts(settings)),
        "llm": (settings.llm.model, llm),
    }
    return {model[len(HUB_PREFIX) :]: patterns for model, patterns in wanted.values() if model.startswith(HUB_PREFIX)}


def git_blob_id(path: Path) -> str:
    """The id git (and so the hub) gives a file's content: sha1 of "blob <size>\\0" + the bytes."""
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _unreachable(what: str, exc: Exception) -> ProvisionError:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return ProvisionError(f"{what}: HF_HUB_OFFLINE is set; unset it to fetch models (only the services need it)")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return ProvisionError(f"{what}: the hub at {constants.ENDPOINT} cannot be reached: {type(exc).__name__} {first}")


def list_files(repo: str, patterns: tuple[str, ...], revision: str = "main") -> tuple[str, list[HubFile]]:
    """(commit, the files of `repo` matching `patterns`) with the hub's checksums."""
    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(repo, revision=revision, files_metadata=True)
    except Exception as exc:  # the library raises its own, httpx's or OSError: each means "not reachable"
        raise _unreachable(f"hub model {repo}", exc) from None
    files = [
        HubFile(s.rfilename, s.size, s.lfs.sha256 if s.lfs else None, s.blob_id)
        for s in info.siblings or []
        if any(fnmatch.fnmatch(s.rfilename, p) for p in patterns)
    ]
    if not files:
        raise ProvisionError(f"hub model {repo}: none of its files match {list(patterns)}; is it the right repo?")
    return str(info.sha), files


def check(path: Path, file: HubFile) -> str | None:
    """What is wrong with a fetched file, against the hub's record, or None."""
    if file.size is not None and path.stat().st_size != file.size:
        return f"{path.stat().st_size} bytes, the hub says {file.size}"
    if file.sha256 is not None:
        if (digest := sha256(path)) != file.sha256:
            return f"sha256 {digest}, the hub says {file.sha256}"
    elif file.blob_id is not None and (blob := git_blob_id(path)) != file.blob_id:
        return f"git blob {blob}, the hub says {file.blob_id}"
    return None


def _discard(pointer: Path) -> None:
    """Remove a bad file from the cache: the snapshot's link and the blob it points to."""
    blob = pointer.resolve()
    pointer.unlink(missing_ok=True)
    if blob != pointer:
        blob.unlink(missing_ok=True)


def fetch_repo(repo: str, patterns: tuple[str, ...], console: Console, revision: str = "main") -> Path:
    """Fetch (or find complete) each wanted file of `repo`; returns the snapshot directory."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    commit, files = list_files(repo, patterns, revision)
    total = sum(f.size or 0 for f in files)
    console.print(f"{repo} @ {commit[:10]}: {len(files)} files, {total / 1e9:.2f} GB")
    snapshot: Path | None = None
    for file in files:
        cached = isinstance(try_to_load_from_cache(repo, file.name, revision=revision), str)
        started = time.monotonic()
        try:
            # the branch, not the commit: the cache then maps "main" to this commit (refs/main),
            # which is what a service loading the repo offline looks up
            local = Path(hf_hub_download(repo, file.name, revision=revision))
        except Exception as exc:  # see list_files
            raise _unreachable(f"{repo}/{file.name}", exc) from None
        if problem := check(local, file):
            _discard(local)
            raise ProvisionError(f"{repo}/{file.name}: {problem}; deleted it, run `halfsec models` again")
        # one line per file, also where the library's bars are off (not a terminal: compose's logs)
        took = time.monotonic() - started
        size = local.stat().st_size / 1e6
        how = "present" if cached else f"fetched, {size:.1f} MB in {took:.1f} s"
        console.print(f"  [green]ok[/] {file.name} ({how}; checked)", highlight=False)
        snapshot = Path(str(local)[: -len(file.name)].rstrip(os.sep))
    assert snapshot is not None
    return snapshot


def fetch_hub_models(settings: Settings, console: Console) -> list[str]:
    """Every hub model of the profile, checked; returns the repos."""
    repos = hub_repos(settings)
    for repo, patterns in repos.items():
        fetch_repo(repo, patterns, console)
    return list(repos)
