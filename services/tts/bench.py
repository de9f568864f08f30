"""`halfsec bench tts`: agent-style replies through services/tts over real HTTP, timed, then heard.

Each reply is sent the way the agent sends it: cut by the agent's chunker (first clause, then
sentences; passed in by the CLI, since services do not import the agent), one request per chunk,
one after the other. Time to first audio (TTFA) is the first chunk's request -> its first PCM
bytes. `first_sentence_ms` is the time to synthesise the reply's whole first sentence (request ->
last byte), what a sentence-by-sentence TTS would make the caller wait. RTF is synthesis wall time
per second of audio over all chunks. `stall_ms` is what a short first chunk can cost: the silence
a caller hears inside a reply, beyond the pauses in the audio itself, because the next audio was
not ready when the audio before it had played out. Whether the cut delays the words themselves
shows in `first_sentence_heard_ms` (request -> the first sentence's last sample played, as cut)
against `first_sentence_heard_whole_ms` (the same, sent whole).

Then Whisper base, in this process, transcribes each reply's audio. `roundtrip_wer` compares what
it heard with what Kokoro was asked to say, both in spoken form: our `speakable` on both sides,
then Whisper's English normaliser. Without `speakable`, written forms count as errors though the
words are the same ("9am" vs Whisper's "9 a.m." is one word against three, "4 7 2 9" vs "4729"):
that figure is `roundtrip_wer_written`. Since the reference goes through the same normaliser
that made the speech, the round trip checks Kokoro's speech, not the normaliser's choices; those
are tests/test_tts_normalize.py's cases.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from configs import Settings
from latency.summary import percentile

from ..asr.bench import wer
from ..asr.engine import WhisperEngine
from ..asr.protocol import SAMPLE_RATE as ASR_RATE
from ..audio import resample
from ..figures import figures_table
from .client import TtsClient
from .edges import EdgeFitter, fit_edges
from .text.cuts import split_pieces
from .text.normalize import speakable
from .text.punctuation import ends_sentence

REPLIES_FILE = Path(__file__).with_name("bench_replies.txt")
EAR_MODEL = "whisper-base"  # under <cache_dir>/models; `halfsec models` assembles it

Chunker = Callable[[str], list[str]]


def load_replies(path: Path = REPLIES_FILE) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    replies = [line for line in lines if line and not line.startswith("#")]
    if not replies:
        raise ValueError(f"no replies in {path} (one per line; # starts a comment)")
    return replies


def first_sentence_chunks(chunks: list[str]) -> int:
    """How many chunks make up the first sentence (the first chunk may be only its first clause)."""
    for n, chunk in enumerate(chunks, 1):
        if ends_sentence(chunk):
            return n
    return len(chunks)


@dataclass
class Timed:
    sent_at: float  # perf_counter when the request went out
    total_s: float
    pcm: np.ndarray  # int16
    rate: int
    arrivals: list[tuple[float, int]]  # (perf_counter when received, samples) per block of PCM

    @property
    def audio_s(self) -> float:
        return len(self.pcm) / self.rate

    @property
    def first_audio_s(self) -> float:
        return self.arrivals[0][0] - self.sent_at


async def timed_synthesis(client: TtsClient, text: str) -> Timed:
    t0 = time.perf_counter()
    chunks: list[bytes] = []
    arrivals: list[tuple[float, int]] = []
    rate = 0
    async for piece_rate, data in client.stream(text):
        rate = piece_rate  # every piece has the service's one rate
        arrivals.append((time.perf_counter(), len(data) // 2))
        chunks.append(data)
    total = time.perf_counter() - t0
    if not arrivals:
        raise ValueError(f"the service had nothing to say for {text!r}")
    return Timed(t0, total, np.frombuffer(b"".join(chunks), np.int16), rate, arrivals)


def playback(arrivals: list[tuple[float, int]], rate: int) -> tuple[float, float]:
    """Audio played as it arrives: it starts with the first block, and each block plays once it
    has arrived and the audio before it has played. Returns (the silence heard while waiting
    for audio, when the last sample has played)."""
    stall, played_until = 0.0, arrivals[0][0]
    for at, samples in arrivals:
        stall += max(0.0, at - played_until)
        played_until = max(at, played_until) + samples / rate
    return stall, played_until


def whisper_ear(settings: Settings) -> WhisperEngine:
    """Whisper base, in this process, as the round trip's listener: the ASR service's engine,
    with a bigger model and beam search, since here accuracy matters and speed does not."""
    asr = settings.asr.model_copy(update={"model": EAR_MODEL, "device": "cpu", "compute_type": "int8", "beam_size": 5})
    return WhisperEngine(settings.model_copy(update={"asr": asr}))


def hear(ear: WhisperEngine, pcm: np.ndarray, rate: int) -> str:
    return ear.transcribe(resample(pcm, rate, ASR_RATE).astype(np.float32) / 32768.0).text


def _ms(values: list[float], q: float) -> float | None:
    seconds = percentile(values, q)
    return None if seconds is None else round(seconds * 1000, 1)


# First chunks by length in words: Kokoro's first audio grows with its input.
FIRST_CHUNK_BUCKETS = (("1-3", 3), ("4-8", 8), ("9+", None))


def first_chunk_bucket(chunk: str) -> str:
    words = len(chunk.split())
    return next(name for name, most in FIRST_CHUNK_BUCKETS if most is None or words <= most)


@dataclass
class BenchResult:
    figures: dict[str, float | int]
    heard: list[tuple[str, str, float]]  # (reply, what Whisper heard, its WER)


async def run_bench(tts_url: str, replies: list[str], chunker: Chunker, settings: Settings) -> BenchResult:
    client = TtsClient(tts_url, timeout_s=300.0, token=settings.token())
    try:
        await timed_synthesis(client, "Hello, this warms the service up.")
        ttfa, first_sentences, stalls, heard_cut, heard_whole, audios = [], [], [], [], [], []
        ttfa_by_words: dict[str, list[float]] = {bucket: [] for bucket, _ in FIRST_CHUNK_BUCKETS}
        synth_s = audio_s = 0.0
        for reply in replies:
            chunks = chunker(reply)
            runs = [await timed_synthesis(client, chunk) for chunk in chunks]
            rate = runs[0].rate
            ttfa.append(runs[0].first_audio_s)
            ttfa_by_words[first_chunk_bucket(chunks[0])].append(runs[0].first_audio_s)
            stalls.append(playback([a for r in runs for a in r.arrivals], rate)[0])
            synth_s += sum(r.total_s for r in runs)
            audio_s += sum(r.audio_s for r in runs)
            audios.append((np.concatenate([r.pcm for r in runs]), rate))
            # The first sentence as cut, and sent whole: when has the caller heard all of it?
            n = first_sentence_chunks(chunks)
            heard_cut.append(playback([a for r in runs[:n] for a in r.arrivals], rate)[1] - runs[0].sent_at)
            whole = await timed_synthesis(client, " ".join(chunks[:n]))
            first_sentences.append(whole.total_s)
            heard_whole.append(playback(whole.arrivals, rate)[1] - whole.sent_at)
    finally:
        await client.aclose()
    # Transcribed after all timing, so Whisper never competes with Kokoro for the cores.
    ear = await asyncio.to_thread(whisper_ear, settings)
    heard = [await asyncio.to_thread(hear, ear, pcm, rate) for pcm, rate in audios]
    figures: dict[str, float | int] = {
        "replies": len(replies),
        "ttfa_ms_p50": _ms(ttfa, 50),
        "ttfa_ms_p95": _ms(ttfa, 95),
        "first_sentence_ms_p50": _ms(first_sentences, 50),
        "first_sentence_ms_p95": _ms(first_sentences, 95),
        "stall_ms_p50": _ms(stalls, 50),
        "stall_ms_p95": _ms(stalls, 95),
        "first_sentence_heard_ms_p50": _ms(heard_cut, 50),
        "first_sentence_heard_whole_ms_p50": _ms(heard_whole, 50),
        "rtf": round(synth_s / audio_s, 3),
        "audio_s": round(audio_s, 1),
        "roundtrip_wer": round(spoken_wer(replies, heard), 4),
        "roundtrip_wer_written": round(wer(replies, heard), 4),
    }
    for bucket, values in ttfa_by_words.items():  # first audio by the first chunk's length in words
        figures[f"ttfa_ms_p50_first_chunk_{bucket}_words"] = _ms(values, 50)
        figures[f"replies_first_chunk_{bucket}_words"] = len(values)
    figures["ttfa_share_of_first_sentence"] = round(figures["ttfa_ms_p50"] / figures["first_sentence_ms_p50"], 3)
    if settings.tts.backend == "onnx" and settings.tts.first_window_s:
        firsts = [split_pieces(speakable(chunker(reply)[0]))[0] for reply in replies]
        figures |= await asyncio.to_thread(windows_against_whole, settings, firsts, ear)
    per_reply = [(r, h, round(spoken_wer([r], [h]), 3)) for r, h in zip(replies, heard, strict=True)]
    return BenchResult(figures, per_reply)


def windows_against_whole(settings: Settings, pieces: list[str], ear: WhisperEngine) -> dict[str, float]:
    """Each reply's first piece rendered whole and in decoder windows (windows.py), in this
    process after all timing: how far apart the two are (waveform SNR, log-spectral distance),
    what Whisper hears in each, and when each has its first audio."""
    from .backend import render
    from .kokoro_onnx import KokoroOnnx

    # "whole" as one decoder run: later pieces' windows (`tts.later_window_s`) off
    kokoro = KokoroOnnx(settings.model_copy(update={"tts": settings.tts.model_copy(update={"later_window_s": None})}))
    voice = settings.tts.voice
    render(kokoro, "Warming up.", voice, 1.0)
    snr, lsd, first_part, whole_s, heard_whole, heard_windows = [], [], [], [], [], []
    for piece in pieces:
        t0 = time.perf_counter()
        whole = render(kokoro, piece, voice, 1.0)
        whole_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        parts = []
        for part in kokoro.stream(piece, voice, 1.0, first=True):
            if not parts:
                first_part.append(time.perf_counter() - t0)
            parts.append(part)
        # both as the service sends them: the windows skip the silence the edge fit cuts
        whole = fit_edges(whole, kokoro.sample_rate, piece)
        fitter = EdgeFitter(kokoro.sample_rate, piece)
        windowed = np.concatenate([*(fitter.feed(part) for part in parts), fitter.close()])
        n = min(len(whole), len(windowed))
        whole, windowed = whole[:n], windowed[:n]
        snr.append(10 * np.log10(np.sum(whole**2) / max(np.sum((whole - windowed) ** 2), 1e-12)))
        lsd.append(log_spectral_distance(whole, windowed))
        for audio, heard in ((whole, heard_whole), (windowed, heard_windows)):
            heard.append(hear(ear, (np.clip(audio, -1, 1) * 32767).astype(np.int16), kokoro.sample_rate))
    return {
        "windows_first_audio_ms_p50": _ms(first_part, 50),
        "whole_first_audio_ms_p50": _ms(whole_s, 50),
        "windows_snr_db_p50": round(float(np.median(snr)), 1),
        "windows_log_spectral_distance_db_p50": round(float(np.median(lsd)), 2),
        "windows_roundtrip_wer": round(spoken_wer(pieces, heard_windows), 4),
        "whole_roundtrip_wer": round(spoken_wer(pieces, heard_whole), 4),
    }


def log_spectral_distance(a: np.ndarray, b: np.ndarray, frame: int = 1024, hop: int = 256) -> float:
    """Mean |dB| difference of two renderings' spectra, over the bins within 60 dB of `a`'s
    loudest (silence would dominate otherwise)."""

    def db(x: np.ndarray) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop] * np.hanning(frame)
        return 20 * np.log10(np.abs(np.fft.rfft(frames)) + 1e-4)

    da, db_ = db(a), db(b)
    heard = da > da.max() - 60
    return float(np.abs(da - db_)[heard].mean())


def spoken_wer(replies: list[str], heard: list[str]) -> float:
    """WER with both sides in spoken form (see the module's docstring)."""
    return wer([speakable(r) for r in replies], [speakable(h) for h in heard])


def render(result: BenchResult, title: str, out: Console, *, worst: int = 5) -> None:
    """The figures `halfsec bench tts` prints, then the replies Whisper heard worst."""
    out.print(figures_table(title, result.figures))
    for text, heard, reply_wer in sorted(result.heard, key=lambda h: h[2], reverse=True)[:worst]:
        if reply_wer > 0:
            out.print(f"WER {reply_wer:.0%}: {text!r}\n       heard: {heard!r}", highlight=False, soft_wrap=True)
