"""`halfsec bench asr --telephone` against the real ASR service, on two short dev-set files: every
file streamed as recorded and again through the 8 kHz μ-law line, the WERs side by side (and in
--json); `--max-per-category` keeps the first files of each category."""

import asyncio
import json
import re
import shutil

import numpy as np

import agent.worker  # noqa: F401  (LiveKit's plugins register on the main thread only; main runs on another)
import services.asr.bench
from agent.cli import main
from agent.sim import devset
from services.asr.protocol import SAMPLE_RATE, Final
from services.audio import read_pcm16
from tests.conftest import required

# two categories; in name order, the second `numbers` file is beyond --max-per-category 1
FILES = ["numbers--goforward", "numbers--tidigits-2934z", "one-word--cv-six"]


async def test_both_lines_on_the_same_files(settings, asr_service, tmp_path, monkeypatch, capsys):
    required(settings, extra=devset.artifacts(settings))
    for stem in FILES:
        for ext in ("wav", "txt"):
            shutil.copy(settings.speech_dir / "dev" / f"{stem}.{ext}", tmp_path)
    lined: list[np.ndarray] = []
    real_line = services.asr.bench.through_line

    def line(pcm: np.ndarray, rate: int) -> np.ndarray:
        lined.append(pcm)
        assert rate == SAMPLE_RATE
        return real_line(pcm, rate)

    monkeypatch.setattr(services.asr.bench, "through_line", line)
    argv = ["bench", "asr", "--telephone", "--max-per-category", "1", "--audio-dir", str(tmp_path)]
    # main runs an event loop of its own: on a thread, off this test's
    code = await asyncio.to_thread(main, [*argv, "--hallucination-s", "0", "--json"])
    assert code == 0
    out = capsys.readouterr().out
    figures = json.loads(out.strip().splitlines()[-1])

    # each file that ran went through the line once, as read at the service's rate
    kept = [FILES[0], FILES[2]]
    assert [len(p) for p in lined] == [len(read_pcm16(tmp_path / f"{s}.wav", SAMPLE_RATE)) for s in kept]
    phone = figures["telephone"]
    for line_figures in (figures, phone):
        assert line_figures["files"] == 2 and line_figures["words"] == 5  # "go forward ten meters", "six"
        assert set(line_figures["categories"]) == {"numbers", "one-word"}
        assert all(row["files"] == 1 for row in line_figures["categories"].values())
        assert {"wer", "offline_wer", "turn_wer"} <= set(line_figures)
        assert line_figures["utterances"] >= 2  # the stream heard each file's speech
        assert all(late["ms"] > 50 and late["file"] in FILES for late in line_figures["late_finals"])
    assert "hallucinated_words" not in phone  # non-speech is streamed once, as recorded
    # the table: each WER at 16 kHz | 8 kHz, per category and overall
    assert re.search(r"│ all +│ +2 │ +5 │( +\d+\.\d% \| \d+\.\d% │){3}", out), out


def test_finals_later_than_the_target_are_listed_with_their_file():
    finals = [
        Final(text="Go forward ten meters.", audio_s=2.24, after_endpoint_ms=ms, reused_preflight=True)
        for ms in (0.2, 50.0, 61.4, 393.0)
    ]
    late = services.asr.bench.late_finals("numbers--goforward", finals)
    assert [(row["file"], row["ms"], row["audio_s"]) for row in late] == [
        ("numbers--goforward", 61, 2.24),
        ("numbers--goforward", 393, 2.24),
    ]
