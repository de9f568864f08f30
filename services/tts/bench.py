"""`halfsec bench tts`: agent-style replies through services/tts over real HTTP, timed, then heard.

Each reply is sent the way the agent sends it: cut by the agent's chunker (first clause, then
sentences; passed in by the CLI, since services do not import the agent), one request per chunk,
one after the other. Time to first audio (TTFA) is the first chunk's request -> its first PCM
bytes. `first_sentence_ms` is the time to synthesise the reply's whole first sentence (request ->
last byte), what a sentence-by-sentence TTS would make the caller wait. RTF is synthesis wall time
per second of audio over all chunks. Then Whisper base, in this process, transcribes each reply's
audio, and the round-trip WER compares that with the reply text through Whisper's English
normaliser (the ASR bench's: "$5.99" and "five dollars and ninety-nine cents" compare equal).
That normaliser still counts written forms as errors ("9am" vs Whisper's "9 a.m." is 1 word
against 3), so `roundtrip_wer_spoken` also compares both sides after our own `speakable`, where
such forms meet ("nine AM"); the difference between the two is formatting, not speech.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..asr.bench import wer
from .client import TtsClient
from .normalize import speakable

REPLIES_FILE = Path(__file__).with_name("bench_replies.txt")
EAR_MODEL = "whisper-base"  # under <cache_dir>/models; `halfsec models` assembles it
WHISPER_RATE = 16000
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")

Chunker = Callable[[str], list[str]]


def load_replies(path: Path = REPLIES_FILE) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    replies = [line for line in lines if line and not line.startswith("#")]
    if not replies:
        raise ValueError(f"no replies in {path} (one per line; # starts a comment)")
    return replies


def first_sentence(chunks: list[str]) -> str:
    """The chunks that make up the first sentence (the first chunk may be only its first clause)."""
    taken: list[str] = []
    for chunk in chunks:
        taken.append(chunk)
        if _SENTENCE_END.search(chunk):
            break
    return " ".join(taken)


@dataclass
class Timed:
    first_audio_s: float
    total_s: float
    pcm: np.ndarray  # int16
    rate: int

    @property
    def audio_s(self) -> float:
        return len(self.pcm) / self.rate


async def timed_synthesis(client: TtsClient, text: str) -> Timed:
    t0 = time.perf_counter()
    first, chunks, rate = None, [], 0
    async for rate, data in client.stream(text):
        if first is None:
            first = time.perf_counter() - t0
        chunks.append(data)
    total = time.perf_counter() - t0
    if first is None:
        raise ValueError(f"the service had nothing to say for {text!r}")
    return Timed(first, total, np.frombuffer(b"".join(chunks), np.int16), rate)


class WhisperEar:
    """Whisper, in-process, as the listener of the round trip."""

    def __init__(self, model_dir: Path, cpu_threads: int = 2) -> None:
        from faster_whisper import WhisperModel

        if not (model_dir / "model.bin").is_file():
            raise FileNotFoundError(f"Whisper model not found in {model_dir}; run `halfsec models`")
        # a directory, never a model name: a name means a hub download (FACTS.md)
        self._model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=cpu_threads)

    def hear(self, pcm: np.ndarray, rate: int) -> str:
        segments, _ = self._model.transcribe(
            to_whisper_rate(pcm, rate), language="en", beam_size=5, condition_on_previous_text=False
        )
        return " ".join(s.text.strip() for s in segments)


def to_whisper_rate(pcm: np.ndarray, rate: int) -> np.ndarray:
    """int16 at `rate` -> float32 at 16 kHz, through LiveKit's resampler."""
    from livekit import rtc

    resampler = rtc.AudioResampler(rate, WHISPER_RATE, num_channels=1)
    frames = resampler.push(rtc.AudioFrame(pcm.tobytes(), rate, 1, len(pcm))) + resampler.flush()
    out = np.frombuffer(b"".join(bytes(f.data) for f in frames), np.int16)
    return out.astype(np.float32) / 32768.0


def _ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 1)


@dataclass
class BenchResult:
    figures: dict[str, float | int]
    heard: list[tuple[str, str, float]]  # (reply, what Whisper heard, its WER)


async def run_bench(tts_url: str, replies: list[str], chunker: Chunker, ear_dir: Path) -> BenchResult:
    client = TtsClient(tts_url, timeout_s=300.0)
    try:
        await timed_synthesis(client, "Hello, this warms the service up.")
        ttfa, first_sentences, audios = [], [], []
        synth_s = audio_s = 0.0
        for reply in replies:
            chunks = chunker(reply)
            runs = [await timed_synthesis(client, chunk) for chunk in chunks]
            ttfa.append(runs[0].first_audio_s)
            synth_s += sum(r.total_s for r in runs)
            audio_s += sum(r.audio_s for r in runs)
            audios.append((np.concatenate([r.pcm for r in runs]), runs[0].rate))
            first_sentences.append((await timed_synthesis(client, first_sentence(chunks))).total_s)
    finally:
        await client.aclose()
    # Transcribed after all timing, so Whisper never competes with Kokoro for the cores.
    ear = await asyncio.to_thread(WhisperEar, ear_dir)
    heard = [await asyncio.to_thread(ear.hear, pcm, rate) for pcm, rate in audios]
    figures: dict[str, float | int] = {
        "replies": len(replies),
        "ttfa_ms_p50": _ms(ttfa, 50),
        "ttfa_ms_p95": _ms(ttfa, 95),
        "first_sentence_ms_p50": _ms(first_sentences, 50),
        "first_sentence_ms_p95": _ms(first_sentences, 95),
        "rtf": round(synth_s / audio_s, 3),
        "audio_s": round(audio_s, 1),
        "roundtrip_wer": round(wer(replies, heard), 4),
        "roundtrip_wer_spoken": round(wer([speakable(r) for r in replies], [speakable(h) for h in heard]), 4),
    }
    figures["ttfa_share_of_first_sentence"] = round(figures["ttfa_ms_p50"] / figures["first_sentence_ms_p50"], 3)
    per_reply = [(r, h, round(wer([r], [h]), 3)) for r, h in zip(replies, heard, strict=True)]
    return BenchResult(figures, per_reply)
