"""`halfsec bench asr`: stream speech files at real-time pace through services/asr and measure.

Each file (wav/flac/mp3 with a same-stem .txt reference) is streamed in 20 ms frames at real-time
pace, with silence before and after, over the real WebSocket protocol. The same files also go
through the offline path (POST /v1/transcribe: faster-whisper's own windowing) for reference WER.
Then 60 s of silence and 60 s of noise are streamed: every word they produce is a hallucination.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import jiwer
import numpy as np
from whisper_normalizer.english import EnglishTextNormalizer

from latency.summary import percentile

from ..audio import read_pcm16
from .client import AsrClient
from .protocol import SAMPLE_RATE, Closed, Final

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3")
LEAD_S, TRAIL_S = 0.5, 1.5
FRAME_S = 0.02
_normalise = EnglishTextNormalizer()


@dataclass
class StreamResult:
    finals: list[Final] = field(default_factory=list)
    endpoint_to_final_ms: list[float] = field(default_factory=list)
    received_s: float = 0.0
    decoded_s: float = 0.0
    compute_s: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(f.text for f in self.finals if f.text)


def corpus(audio_dir: Path) -> list[tuple[Path, str]]:
    files = sorted(p for p in audio_dir.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
    pairs = [(p, p.with_suffix(".txt").read_text().strip()) for p in files if p.with_suffix(".txt").is_file()]
    if not pairs:
        raise FileNotFoundError(f"no audio files with a same-stem .txt reference in {audio_dir}")
    return pairs


async def stream_audio(client: AsrClient, pcm: np.ndarray) -> StreamResult:
    """Stream `pcm` at real-time pace; collect the finals and the endpoint-to-final times."""
    result = StreamResult()
    stream = await client.stream()
    t0 = time.monotonic()

    async def send() -> None:
        step = int(FRAME_S * SAMPLE_RATE)
        for i in range(0, len(pcm), step):
            await stream.send(pcm[i : i + step].tobytes())
            ahead = t0 + (i + step) / SAMPLE_RATE - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        await stream.end()

    sending = asyncio.create_task(send())
    async for event in stream.events():
        # endpoint -> final is timed at the service (`after_endpoint_ms`), free of network jitter
        if isinstance(event, Final):
            result.finals.append(event)
            result.endpoint_to_final_ms.append(event.after_endpoint_ms)
        elif isinstance(event, Closed):
            result.received_s, result.decoded_s, result.compute_s = (event.received_s, event.decoded_s, event.compute_s)
    await sending
    await stream.aclose()
    return result


def _rounded(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 1)


def wer(references: list[str], hypotheses: list[str]) -> float:
    refs = [_normalise(r) for r in references]
    hyps = [_normalise(h) for h in hypotheses]
    return float(jiwer.wer(refs, hyps))


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    """Pink-ish noise at a speech-like level: what a line or a room sounds like."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(int(seconds * SAMPLE_RATE))
    spectrum = np.fft.rfft(white) / np.sqrt(np.arange(1, len(white) // 2 + 2))
    pink = np.fft.irfft(spectrum, n=len(white))
    return (pink / np.abs(pink).max() * 0.3 * 32767).astype(np.int16)


async def run_bench(asr_url: str, audio_dir: Path, *, hallucination_s: float = 60.0) -> dict[str, float | int]:
    pairs = corpus(audio_dir)
    client = AsrClient(asr_url, timeout_s=120.0)
    try:
        lead, trail = np.zeros(int(LEAD_S * SAMPLE_RATE), np.int16), np.zeros(int(TRAIL_S * SAMPLE_RATE), np.int16)
        streamed, offline, after_ms = [], [], []
        received = decoded = compute = 0.0
        for path, _ in pairs:
            pcm = read_pcm16(path, SAMPLE_RATE)
            run = await stream_audio(client, np.concatenate([lead, pcm, trail]))
            streamed.append(run.text)
            after_ms += run.endpoint_to_final_ms
            received, decoded, compute = received + run.received_s, decoded + run.decoded_s, compute + run.compute_s
            offline.append((await client.transcribe(pcm.tobytes())).text)
        silence = await stream_audio(client, np.zeros(int(hallucination_s * SAMPLE_RATE), np.int16))
        noisy = await stream_audio(client, noise(hallucination_s))
    finally:
        await client.aclose()
    refs = [ref for _, ref in pairs]
    return {
        "files": len(pairs),
        "wer": round(wer(refs, streamed), 4),
        "offline_wer": round(wer(refs, offline), 4),
        "rtf": round(compute / received, 3),  # decoding time per second of audio streamed
        "final_after_endpoint_ms_p50": _rounded(percentile(after_ms, 50)),
        "final_after_endpoint_ms_p90": _rounded(percentile(after_ms, 90)),
        "decode_factor": round(decoded / received, 3),
        "silence_words": len(silence.text.split()),
        "noise_words": len(noisy.text.split()),
    }
