"""What the simulated caller says: public-domain speech from one package's test data (the
pocketsphinx sdist), fetched by `halfsec models`; no third-party audio is committed.

- `librivox`: five LibriVox utterances (4-7 s, one reader);
- `turns`: ten short, varied turns of other speakers (card names, digits, commands; 1-6 s).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from configs import Settings
from services.provision import Artifact, pip_download


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
    librivox = {f"{u}.{ext}": None for u in LIBRIVOX_IDS for ext in ("wav", "txt")}
    return [
        Artifact("librivox speech", settings.speech_dir / "librivox", librivox, build_librivox),
        Artifact("call turns", settings.speech_dir / "turns", {f"{n}.wav": None for n in CALL_TURNS}, build_call_turns),
    ]


def demo_audio(settings: Settings) -> list[Path]:
    return [settings.speech_dir / "librivox" / f"{u}.wav" for u in LIBRIVOX_IDS]


def call_turns(settings: Settings) -> list[Path]:
    """The varied short turns (not LibriVox), in a fixed order."""
    return [settings.speech_dir / "turns" / f"{name}.wav" for name in CALL_TURNS]
