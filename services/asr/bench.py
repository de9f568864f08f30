"""`halfsec bench asr`: stream speech files at real-time pace through services/asr and measure.

Each file (wav/flac/mp3 with a same-stem .txt reference; `<category>--<name>` groups it) is
streamed in 20 ms frames at real-time pace, with silence before and after, over the real
WebSocket protocol. Two references with the same model, over HTTP (POST /v1/transcribe):
  - `offline`: the whole file at once (faster-whisper's own 30 s windows);
  - `per turn`: each utterance the stream found, alone, after it ended: what a pipeline that
    transcribes each turn after it (stock LiveKit's VAD-wrapped STT) would hear.
Then each kind of non-speech (room noise, breathing, music) is streamed for a minute: every word
it yields is a hallucination.

With `telephone`, each file is streamed, and decoded both ways, a second time right after
itself, as a phone call delivers it: through an 8 kHz G.711 μ-law line (services/telephone.py)
and back up to the service's 16 kHz, as LiveKit's SIP bridge hands a caller to the agent.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import jiwer
import numpy as np
from rich.console import Console
from rich.table import Table
from whisper_normalizer.english import EnglishTextNormalizer

from latency.summary import percentile

from ..audio import read_pcm16
from ..figures import compared_table, figures_table
from ..telephone import through_line
from .client import AsrClient
from .protocol import SAMPLE_RATE, Closed, EndOfSpeech, Final, Preflight, SpeechStarted

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3")
LEAD_S, TRAIL_S = 0.5, 1.5
FRAME_S = 0.02
HALLUCINATION_S = 60.0  # of each kind of non-speech
# The streaming target (docs/asr.md): a final ready within this of its endpoint. The finals later
# than it are listed by file, so a run shows which speech makes the P90, not only that it moved.
LATE_MS = 50.0
LATE_SHOWN = 12
_normalise = EnglishTextNormalizer()


@dataclass
class StreamResult:
    finals: list[Final] = field(default_factory=list)
    endpoint_to_final_ms: list[float] = field(default_factory=list)
    utterances: list[tuple[float, float]] = field(default_factory=list)  # stream seconds
    preflights: int = 0
    received_s: float = 0.0
    decoded_s: float = 0.0
    compute_s: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(f.text for f in self.finals if f.text)


def category(path: Path) -> str:
    """`<category>--<name>.wav` belongs to `category`; any other name to "-"."""
    head, sep, _ = path.stem.partition("--")
    return head if sep else "-"


def corpus(audio_dir: Path, per_category: int | None = None) -> list[tuple[Path, str]]:
    """(file, reference) in name order; with `per_category`, the first that many of each category."""
    files = sorted(p for p in audio_dir.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
    pairs = [(p, p.with_suffix(".txt").read_text().strip()) for p in files if p.with_suffix(".txt").is_file()]
    if not pairs:
        raise FileNotFoundError(f"no audio files with a same-stem .txt reference in {audio_dir}")
    if per_category is None:
        return pairs
    kept, taken = [], defaultdict(int)
    for path, ref in pairs:
        if taken[category(path)] < per_category:
            taken[category(path)] += 1
            kept.append((path, ref))
    return kept


async def stream_audio(client: AsrClient, pcm: np.ndarray) -> StreamResult:
    """Stream `pcm` at real-time pace; collect the finals, utterances and endpoint-to-final times."""
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
    start = 0.0
    async for event in stream.events():
        # endpoint -> final is timed at the service (`after_endpoint_ms`), free of network jitter
        if isinstance(event, Final):
            result.finals.append(event)
            result.endpoint_to_final_ms.append(event.after_endpoint_ms)
        elif isinstance(event, SpeechStarted):
            start = event.stream_s
        elif isinstance(event, EndOfSpeech):
            result.utterances.append((start, event.stream_s))
        elif isinstance(event, Preflight):
            result.preflights += 1
        elif isinstance(event, Closed):
            result.received_s, result.decoded_s, result.compute_s = (event.received_s, event.decoded_s, event.compute_s)
    await sending
    await stream.aclose()
    return result


def late_finals(name: str, finals: list[Final]) -> list[dict]:
    """The finals of one file later than LATE_MS after their endpoint, as the bench lists them."""
    return [
        {"file": name, "ms": round(f.after_endpoint_ms), "audio_s": round(f.audio_s, 2), "text": f.text[:60]}
        for f in finals
        if f.after_endpoint_ms > LATE_MS
    ]


def _rounded(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 1)


def wer(references: list[str], hypotheses: list[str]) -> float:
    pairs = [(_normalise(r), _normalise(h)) for r, h in zip(references, hypotheses, strict=True)]
    pairs = [(r, h) for r, h in pairs if r]  # a reference of fillers only counts no words
    return float(jiwer.wer([r for r, _ in pairs], [h for _, h in pairs])) if pairs else 0.0


def words(text: str) -> int:
    return len(_normalise(text).split())


def noise_minute(files: list[Path], seconds: float = HALLUCINATION_S) -> np.ndarray:
    """`files` one after another, looped, to `seconds`."""
    clips = [read_pcm16(p, SAMPLE_RATE) for p in files]
    joined = np.concatenate(clips)
    return np.resize(joined, int(seconds * SAMPLE_RATE))


@dataclass
class _Row:
    refs: list[str] = field(default_factory=list)
    streamed: list[str] = field(default_factory=list)
    offline: list[str] = field(default_factory=list)
    per_turn: list[str] = field(default_factory=list)
    unheard: int = 0

    def figures(self) -> dict[str, float | int]:
        return {
            "files": len(self.refs),
            "words": sum(words(r) for r in self.refs),
            "wer": round(wer(self.refs, self.streamed), 4),
            "offline_wer": round(wer(self.refs, self.offline), 4),
            "turn_wer": round(wer(self.refs, self.per_turn), 4),
            "unheard": self.unheard,
        }


@dataclass
class _Pass:
    """Every file as one line delivers it (as recorded, or through a telephone line)."""

    rows: dict[str, _Row] = field(default_factory=lambda: defaultdict(_Row))
    everything: _Row = field(default_factory=_Row)
    after_ms: list[float] = field(default_factory=list)
    late: list[dict] = field(default_factory=list)
    received_s: float = 0.0
    decoded_s: float = 0.0
    compute_s: float = 0.0
    utterances: int = 0
    preflights: int = 0

    async def run(self, client: AsrClient, path: Path, ref: str, pcm: np.ndarray) -> None:
        """Stream `pcm` with silence around it; decode each utterance the stream found and the
        whole file on their own."""
        lead, trail = np.zeros(int(LEAD_S * SAMPLE_RATE), np.int16), np.zeros(int(TRAIL_S * SAMPLE_RATE), np.int16)
        streamed = np.concatenate([lead, pcm, trail])
        run = await stream_audio(client, streamed)
        turns = []
        for start, end in run.utterances:  # the stream's own cuts, each decoded alone
            piece = streamed[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
            turns.append((await client.transcribe(piece.tobytes())).text if len(piece) else "")
        offline = (await client.transcribe(pcm.tobytes())).text
        for row in (self.rows[category(path)], self.everything):
            row.refs.append(ref)
            row.streamed.append(run.text)
            row.offline.append(offline)
            row.per_turn.append(" ".join(t for t in turns if t))
            row.unheard += sum(f.unheard for f in run.finals)
        self.after_ms += run.endpoint_to_final_ms
        self.late += late_finals(path.stem, run.finals)
        self.received_s += run.received_s
        self.decoded_s += run.decoded_s
        self.compute_s += run.compute_s
        self.utterances += len(run.utterances)
        self.preflights += run.preflights

    def figures(self) -> dict:
        return {
            **self.everything.figures(),
            "utterances": self.utterances,
            "preflights": self.preflights,
            "rtf": round(self.compute_s / self.received_s, 3),  # decoding time per second of audio streamed
            "final_after_endpoint_ms_p50": _rounded(percentile(self.after_ms, 50)),
            "final_after_endpoint_ms_p90": _rounded(percentile(self.after_ms, 90)),
            "decode_factor": round(self.decoded_s / self.received_s, 3),
            "late_finals": sorted(self.late, key=lambda late: -late["ms"]),
            "categories": {name: self.rows[name].figures() for name in sorted(self.rows)},
        }


async def run_bench(
    asr_url: str,
    audio_dir: Path,
    noise: dict[str, list[Path]] | None = None,
    *,
    hallucination_s: float = HALLUCINATION_S,
    token: str | None = None,
    telephone: bool = False,
    per_category: int | None = None,
) -> dict:
    """The figures: overall ones at the top level, `categories` (per category, streaming beside
    both references), and `hallucinated_words` per kind of non-speech. With `telephone`, each
    file is also streamed as a G.711 μ-law call at 8 kHz delivers it (services/telephone.py),
    right after itself: the same figures for that line under `telephone`."""
    pairs = corpus(audio_dir, per_category)
    client = AsrClient(asr_url, timeout_s=120.0, token=token)
    wideband, narrowband = _Pass(), _Pass()
    hallucinated: dict[str, int] = {}
    asked: dict[str, int] = {}  # unheard finals on non-speech: the agent would ask to repeat
    try:
        for path, ref in pairs:
            pcm = read_pcm16(path, SAMPLE_RATE)
            await wideband.run(client, path, ref, pcm)
            if telephone:
                await narrowband.run(client, path, ref, through_line(pcm, SAMPLE_RATE))
        for kind, files in (noise or {}).items():
            heard = await stream_audio(client, noise_minute(files, hallucination_s))
            hallucinated[kind] = len(heard.text.split())
            asked[kind] = sum(f.unheard for f in heard.finals)
    finally:
        await client.aclose()
    figures = {**wideband.figures(), "hallucinated_words": hallucinated, "noise_unheard": asked}
    return figures | ({"telephone": narrowband.figures()} if telephone else {})


def render(figures: dict, title: str, console: Console) -> None:
    """The overall figures, then streaming beside both references per category (with a
    telephone pass, each figure at 16 kHz beside the same at 8 kHz μ-law), then the late finals."""
    flat = _flat(figures)
    flat |= {f"hallucinated words: {kind}": n for kind, n in figures["hallucinated_words"].items()}
    flat |= {f"unheard finals: {kind}": n for kind, n in figures["noise_unheard"].items()}
    if "telephone" not in figures:
        console.print(figures_table(title, flat))
        console.print(_category_table(figures))
    else:
        console.print(compared_table(title, {"16 kHz": flat, "8 kHz μ-law": _flat(figures["telephone"])}))
        console.print(_telephone_table(figures))
    if figures["late_finals"]:  # at 16 kHz
        console.print(_late_table(figures["late_finals"]))


def _flat(figures: dict) -> dict:
    return {
        k: v
        for k, v in figures.items()
        if k not in ("categories", "hallucinated_words", "noise_unheard", "telephone", "late_finals")
    }


def _category_table(figures: dict) -> Table:
    table = Table(title="WER by category: streaming, offline (whole file), per turn (each utterance alone)")
    for column in ("category", "files", "words", "streaming", "offline", "per turn", "unheard"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for name, row in figures["categories"].items():
        table.add_row(
            name,
            str(row["files"]),
            str(row["words"]),
            *(f"{row[k]:.1%}" for k in ("wer", "offline_wer", "turn_wer")),
            str(row["unheard"]),
        )
    return table


def _late_table(late: list[dict]) -> Table:
    shown = late[:LATE_SHOWN]
    more = f" ({len(late) - len(shown)} more in --json)" if len(late) > len(shown) else ""
    table = Table(title=f"{len(late)} finals later than {LATE_MS:.0f} ms after their endpoint{more}")
    for column in ("file", "after endpoint, ms", "utterance, s", "final"):
        table.add_column(column, justify="left" if column in ("file", "final") else "right")
    for row in shown:
        table.add_row(row["file"], str(row["ms"]), f"{row['audio_s']:.2f}", row["text"])
    return table


def _telephone_table(figures: dict) -> Table:
    """Per category and overall: each WER at 16 kHz | at 8 kHz μ-law, on the same files."""
    table = Table(title="WER by category, 16 kHz | 8 kHz G.711 μ-law, on the same files")
    for column in ("category", "files", "words", "streaming", "offline", "per turn"):
        table.add_column(column, justify="left" if column == "category" else "right")
    phone = figures["telephone"]
    rows = [(name, row, phone["categories"][name]) for name, row in figures["categories"].items()]
    for name, wide, narrow in [*rows, ("all", figures, phone)]:
        wers = (f"{wide[k]:.1%} | {narrow[k]:.1%}" for k in ("wer", "offline_wer", "turn_wer"))
        table.add_row(name, str(wide["files"]), str(wide["words"]), *wers, end_section=name == rows[-1][0])
    return table
