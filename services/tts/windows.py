"""Which frames of a piece Kokoro's decoder renders in each run, and how the runs are joined.

The decoder (kokoro_graph.py) renders audio frames (25 ms each) from the encoder's features.
Rendered whole, a 6 s sentence has no sample before ~1.9 s of work (cpu profile). Rendered in two
windows, the first plays while the second is made: the first is sized so that the second, at the
decoder's speed right now (`decode_ratio`, seconds of work per second of audio, measured on the
last runs: it doubles when vLLM decodes beside Kokoro), is ready when the first has played. So the
caller hears the first sound sooner and no gap inside the reply, on an idle box or a busy one. The
second may itself be cut in windows of about a later piece's (`plan`'s `rest`), so another
reply's first window is served between them (scheduler.py); the first keeps its size. A first
window sized smaller (windows that grew twice as long each time, from 0.4 s) gave first audio
sooner still on an idle box, but in calls its later windows were not ready in time: the longest
quiet in a reply's first 2 s went from P50 240 to 410 ms (docs/benchmarks.md).

The decoder is not causal and normalises over the frames it is given, so a window decoded alone
is not the same audio as that stretch of the whole piece. Each window is decoded with
CONTEXT_FRAMES of its neighbours on both sides (then cut away; EDGE_CONTEXT_FRAMES of the
silence before a piece's first sound and after its last, and only FIRST_LOOKAHEAD_FRAMES after
the first window, whose decode the first audio waits for), and two windows meet in a crossfade
of CROSSFADE_FRAMES. `halfsec bench tts` compares each reply's first piece rendered
both ways (its `windows_*` figures: SNR, log-spectral distance, round-trip WER, first audio).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# 12 frames (0.3 s) of context each side: with 8, windows of 0.4-1.6 s were further from whole
# synthesis (log-spectral distance 6.4 dB against 5.7-6.0 dB at 12-16; 12 replies, in-process),
# and more costs decode time on every window.
CONTEXT_FRAMES = 12
# Except after the first window: the frames decoded past its end hold back a reply's first audio
# and are cut away. 30 held-out replies' first pieces (services/tts/heldout_replies.txt;
# in-process, decoder ratio fixed at 0.5, two rounds): first part P50 790 ms with 12, 700 with 6,
# log-spectral distance to the whole piece 5.09 / 5.11 dB, level -1.06 dB both, the same words
# heard (round-trip WER 2.1 %); at the join alone (+-0.25 s, 22 two-window pieces of these and
# the compare replies): 4.77 / 4.76 dB P50, 5.46 / 5.70 P90; with 4, 4.84 / 5.87, so 6
# (docs/benchmarks.md, 2026-12-06).
FIRST_LOOKAHEAD_FRAMES = 6
# At a piece's outer edges (before its first sound, after its last) the neighbours are the
# silence Kokoro puts around a piece, which the edge fit cuts away; they are decoded only for the
# decoder's sake. Fewer of them make the first audio sooner, and the piece a little quieter (the
# decoder's instance norms then see less silence). 61 first pieces of `bench tts`'s and `bench
# compare`'s replies, in-process, two rounds (first part P50 / level against the whole piece P50
# / log-spectral distance P50 / round-trip WER): 12 frames 347 ms / -0.9 dB / 4.8 dB / 2.1 %,
# 8: 307 / -1.4 / 5.7 / 1.1, 6: 290 / -1.9 / 6.7 / 2.7, 4: 266 / -2.4 / 7.8 / 1.6. Kept 8: at 4,
# first pieces come out ~1.5 dB quieter than the later pieces, which are decoded whole.
EDGE_CONTEXT_FRAMES = 8
CROSSFADE_FRAMES = 4  # 0.1 s: the two renderings of the same frames faded into one another


@dataclass(frozen=True)
class Window:
    start: int  # first frame this window contributes
    end: int  # frame after its last
    lo: int  # first frame decoded (start less context)
    hi: int  # frame after the last decoded (end plus context)


# Kokoro's energy curve (the encoder's, log scale) is ~-9.4 where the audio is digital silence
# and above 2 in speech; -6 is ~-72 dBFS, well under what the edge fit keeps (edges.py). A piece
# opens with ~0.3 s below it (measured on four replies: 0.28-0.32 s), which a first window would
# spend its decode on only for the edge fit to cut it away.
SOUND_ENERGY = -6.0
SOUND_PAD = 2  # frames kept beyond the first and last sound


def sounding(energy: np.ndarray) -> tuple[int, int]:
    """The frames from a little before the first sound to a little after the last, by the
    encoder's energy (one value per frame); all of them if none sounds."""
    loud = np.flatnonzero(energy > SOUND_ENERGY)
    if len(loud) == 0:
        return 0, len(energy)
    return max(0, int(loud[0]) - SOUND_PAD), min(len(energy), int(loud[-1]) + 1 + SOUND_PAD)


def plan(
    frames: int,
    first: int,
    decode_ratio: float,
    context: int = CONTEXT_FRAMES,
    energy: np.ndarray | None = None,
    edge_context: int = EDGE_CONTEXT_FRAMES,
    lookahead: int = FIRST_LOOKAHEAD_FRAMES,
    step: int = 1,
    rest: int = 0,
) -> list[Window]:
    """Windows over `frames`. `first` <= 0: one window over all. Otherwise the sounding frames
    (by the encoder's `energy` per frame, when given), with `edge_context` frames decoded
    before and after them, in two windows: the first at least `first` frames and long enough
    that the second, at `decode_ratio`, is decoded while it plays (`context` frames decoded on
    each side of the join, but only `lookahead` after the first window); one window when the
    second would be shorter than `first`. The first window ends at the quietest frame within an eighth
    of its length, so a late second window is waited for in a pause. Each window's decoded frames
    are widened with the piece's own frames, after it and then before, to a multiple of `step`
    where the piece has them (a runtime that builds kernels per input length, generator.py).

    `rest` > 0: what follows the first window in windows of about `rest` frames, cut as `spans`
    cuts a later piece, so another reply's first window, served between two of them
    (scheduler.py), waits for one of them and not for the whole rest. The first window keeps the
    size that has the whole rest ready as it ends: the rest's first part is ready sooner than the
    whole rest was, and a first window served after it has that part's audio, `rest` frames or
    more, to be made in before the next part is due."""
    if frames <= 0:
        return []
    if first <= 0:
        return [Window(0, frames, 0, frames)]
    begin, stop = sounding(energy) if energy is not None else (0, frames)
    # second window ready as the first ends: ratio * (rest + context + edge_context) <= first window
    size = max(first, math.ceil(decode_ratio * (stop - begin + context + edge_context) / (1 + decode_ratio)))
    end = begin + size
    if energy is not None and end < stop:
        slack = size // 8
        candidates = range(end, min(stop, end + slack + 1))  # never shorter than planned
        end = min(candidates, key=lambda i: (energy[i], i - end))  # the quietest, then the nearest
    cuts = [begin, stop] if stop - end < first else [begin, end, *_even_cuts(end, stop, rest, energy), stop]
    return [
        _widened(
            Window(
                a,
                b,
                max(0, a - (edge_context if a == begin else context)),
                min(frames, b + (edge_context if b == stop else lookahead if a == begin else context)),
            ),
            frames,
            step,
        )
        for a, b in zip(cuts, cuts[1:], strict=False)
    ]


def spans(
    frames: int, size: int, context: int = CONTEXT_FRAMES, energy: np.ndarray | None = None, step: int = 1
) -> list[Window]:
    """Windows of about `size` frames over a later piece (one when it is shorter than two),
    each cut at the quietest frame within an eighth of `size` of an even cut, `context` frames
    decoded on each side of a join: services/tts's queue can serve another reply's first piece
    between two of them (scheduler.py), instead of after the whole piece."""
    if frames <= 0:
        return []
    cuts = [0, *_even_cuts(0, frames, size, energy), frames]
    if len(cuts) == 2:
        return [_widened(Window(0, frames, 0, frames), frames, step)]
    return [
        _widened(Window(a, b, max(0, a - context), min(frames, b + context)), frames, step)
        for a, b in zip(cuts, cuts[1:], strict=False)
    ]


def _even_cuts(begin: int, end: int, size: int, energy: np.ndarray | None) -> list[int]:
    """Where frames `begin`..`end` are cut into windows of about `size` (none when they are
    shorter than two): at even cuts, each moved to the quietest frame within an eighth of `size`."""
    count = (end - begin) // size if size > 0 else 1
    cuts = [begin]
    for i in range(1, count):
        cut = begin + round(i * (end - begin) / count)
        if energy is not None:
            slack = size // 8
            candidates = range(max(cuts[-1] + 1, cut - slack), min(end - 1, cut + slack) + 1)
            cut = min(candidates, key=lambda j: (energy[j], abs(j - cut)))  # the quietest, then the nearest
        cuts.append(cut)
    return cuts[1:]


def _widened(w: Window, frames: int, step: int) -> Window:
    short = -(w.hi - w.lo) % step
    hi = min(frames, w.hi + short)
    return Window(w.start, w.end, max(0, w.lo - (short - (hi - w.hi))), hi)


class Stitcher:
    """Joins the windows' audio as it comes: each window's own frames, its last
    CROSSFADE_FRAMES held back and faded into the next window's rendering of them."""

    def __init__(self, frame_samples: int, crossfade_frames: int = CROSSFADE_FRAMES) -> None:
        self._frame = frame_samples
        self._fade = crossfade_frames * frame_samples
        self._held: np.ndarray | None = None

    def add(self, window: Window, audio: np.ndarray, *, last: bool) -> np.ndarray:
        """The samples of `window` (decoded over lo..hi) that can be played now."""
        begin = (window.start - window.lo) * self._frame
        body = audio[begin : (window.end - window.lo) * self._frame]
        if self._held is not None:
            fade = len(self._held)
            lead = audio[begin - fade : begin]
            ramp = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
            body = np.concatenate([self._held * (1.0 - ramp) + lead * ramp, body])
            self._held = None
        if last or len(body) <= self._fade:
            return body
        self._held = body[-self._fade :]
        return body[: -self._fade]
