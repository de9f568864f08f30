"""Kokoro's decoder in windows: the plan covers every frame once, the joins give back the signal,
the edge fit in parts is the whole fit, and on the real model the two halves are the whole graph
and a first piece in windows is the same speech, sooner in parts."""

import numpy as np
import pytest

from services.tts.backend import render
from services.tts.edges import EdgeFitter, fit_edges
from services.tts.kokoro_graph import FRAME_SAMPLES
from services.tts.windows import CONTEXT_FRAMES, EDGE_CONTEXT_FRAMES, FIRST_LOOKAHEAD_FRAMES, Stitcher, plan, spans

from .conftest import required


@pytest.mark.parametrize("frames", [1, 15, 16, 40, 95, 239, 1000])
@pytest.mark.parametrize("ratio", [0.3, 0.6, 1.5])
def test_the_second_window_is_made_while_the_first_plays(frames, ratio):
    windows = plan(frames, 16, ratio)
    assert windows[0].start == 0 and windows[-1].end == frames
    for w in windows:
        after = FIRST_LOOKAHEAD_FRAMES if w.start == 0 and w.end < frames else CONTEXT_FRAMES
        assert w.lo == max(0, w.start - CONTEXT_FRAMES) and w.hi == min(frames, w.end + after)
    if len(windows) == 2:
        first, second = windows
        assert first.end == second.start and second.end - second.start >= 16  # no short tail
        assert first.end - first.start >= 16
        assert ratio * (second.hi - second.lo) <= first.end - first.start  # ready in time
    else:
        assert len(windows) == 1


def test_a_faster_decoder_gets_a_shorter_first_window():
    sizes = [plan(239, 16, ratio)[0].end for ratio in (0.2, 0.4, 0.8)]
    assert sizes[0] < sizes[1] < sizes[2]
    assert plan(239, 16, 0.2)[0].end == 44  # ceil(0.2 * (239 + 12 + 8) / 1.2)


@pytest.mark.parametrize("frames", [20, 40, 95, 239])
def test_decoded_lengths_are_widened_to_the_step_with_the_pieces_own_frames(frames):
    exact, widened = plan(frames, 16, 0.6), plan(frames, 16, 0.6, step=8)
    assert [(w.start, w.end) for w in widened] == [(w.start, w.end) for w in exact]
    for e, w in zip(exact, widened, strict=True):
        assert w.lo <= e.lo and w.hi >= e.hi and w.hi - w.lo - (e.hi - e.lo) < 8  # only widened, by < step
        assert (w.hi - w.lo) % 8 == 0 or (w.lo, w.hi) == (0, frames)  # short only where the piece ends
        assert w.hi == frames or w.lo == e.lo  # frames after the window are taken first


def test_no_first_window_is_one_window():
    assert [(w.start, w.end, w.lo, w.hi) for w in plan(239, 0, 0.5)] == [(0, 239, 0, 239)]
    assert plan(0, 16, 0.5) == []


@pytest.mark.parametrize("frames", [1, 47, 95, 96, 200, 1000])
def test_a_later_piece_is_cut_in_windows_of_about_the_size(frames):
    windows = spans(frames, 48)
    assert windows[0].start == 0 and windows[-1].end == frames
    assert all(a.end == b.start for a, b in zip(windows, windows[1:], strict=False))
    assert len(windows) == max(1, frames // 48)
    for w in windows:
        assert w.lo == max(0, w.start - CONTEXT_FRAMES) and w.hi == min(frames, w.end + CONTEXT_FRAMES)
        assert len(windows) == 1 or 48 <= w.end - w.start < 96
    assert spans(0, 48) == [] and spans(200, 0) == [plan(200, 0, 0.5)[0]]


@pytest.mark.parametrize("frames", [40, 95, 239, 400, 1000])
def test_the_rest_of_a_first_piece_comes_in_windows_of_about_the_later_size(frames):
    """With `rest`, the first window is the one `plan` sizes for the whole rest, and the rest is
    cut as a later piece is: another reply's first window waits one of them, not the whole rest
    (a rest of 1.5-3 s took up to ~1 s to decode in two-call runs, docs/benchmarks.md)."""
    whole, cut = plan(frames, 16, 0.4), plan(frames, 16, 0.4, rest=48)
    assert cut[0] == whole[0] and cut[-1].end == frames
    assert all(a.end == b.start for a, b in zip(cut, cut[1:], strict=False))
    if len(whole) == 2:
        rest = frames - whole[0].end
        assert len(cut) == 1 + max(1, rest // 48)
        for w in cut[1:]:
            assert w.lo == w.start - CONTEXT_FRAMES and w.hi == min(frames, w.end + CONTEXT_FRAMES)
            assert len(cut) == 2 or 48 <= w.end - w.start < 96
    else:
        assert cut == whole
    signal = np.random.default_rng(2).standard_normal(frames * FRAME_SAMPLES).astype(np.float32)
    stitcher = Stitcher(FRAME_SAMPLES)
    parts = [
        stitcher.add(w, signal[w.lo * FRAME_SAMPLES : w.hi * FRAME_SAMPLES], last=i == len(cut) - 1)
        for i, w in enumerate(cut)
    ]
    np.testing.assert_allclose(np.concatenate(parts), signal, atol=1e-6)


def test_a_later_pieces_joins_fall_in_quiet_frames_and_stitch_back():
    energy = np.full(200, 5.0)
    energy[[53, 97, 146, 160]] = -3.0  # pauses near the even cuts (50, 100, 150), within an eighth of 48 (6)
    assert [w.end for w in spans(200, 48, energy=energy)] == [53, 97, 146, 200]
    signal = np.random.default_rng(1).standard_normal(200 * FRAME_SAMPLES).astype(np.float32)
    stitcher, windows = Stitcher(FRAME_SAMPLES), spans(200, 48, step=8)
    parts = [
        stitcher.add(w, signal[w.lo * FRAME_SAMPLES : w.hi * FRAME_SAMPLES], last=i == len(windows) - 1)
        for i, w in enumerate(windows)
    ]
    np.testing.assert_allclose(np.concatenate(parts), signal, atol=1e-6)


def test_the_joins_give_back_what_a_decoder_without_seams_renders():
    """Windows cut from one signal (a decoder whose windows agree exactly) stitch back to it."""
    frames = 239
    signal = np.random.default_rng(0).standard_normal(frames * FRAME_SAMPLES).astype(np.float32)
    stitcher = Stitcher(FRAME_SAMPLES)
    windows = plan(frames, 16, 0.3)
    parts = [
        stitcher.add(w, signal[w.lo * FRAME_SAMPLES : w.hi * FRAME_SAMPLES], last=i == len(windows) - 1)
        for i, w in enumerate(windows)
    ]
    assert len(parts) == 2 and all(len(p) for p in parts)
    np.testing.assert_allclose(np.concatenate(parts), signal, atol=1e-6)


def test_the_edge_fit_in_parts_is_the_whole_fit():
    rate = 24000
    t = np.arange(rate) / rate
    speech = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 1.5 * t) > -0.3)).astype(np.float32)
    audio = np.concatenate([np.zeros(3000, np.float32), speech, np.zeros(5000, np.float32)])
    fitter = EdgeFitter(rate, "Sure,")
    parts = [fitter.feed(audio[i : i + 7001]) for i in range(0, len(audio), 7001)]
    np.testing.assert_array_equal(np.concatenate([*parts, fitter.close()]), fit_edges(audio, rate, "Sure,"))


@pytest.fixture(scope="module")
def kokoro(settings):
    required(settings)
    from services.tts.kokoro_onnx import KokoroOnnx

    # onnxruntime's graph, whatever this CPU would pick: the halves are checked bit for bit
    tts = settings.tts.model_copy(update={"first_window_s": 0.4, "later_window_s": None, "generator": "onnxruntime"})
    return KokoroOnnx(settings.model_copy(update={"tts": tts}))


def test_the_two_halves_are_the_whole_graph(kokoro, settings):
    import onnxruntime as ort

    whole = ort.InferenceSession(str(settings.model_path(settings.tts.model)), providers=["CPUExecutionProvider"])
    tokens = kokoro._kokoro.tokenizer.tokenize(
        kokoro._kokoro.tokenizer.phonemize("Good morning, how can I help?", "en-us")
    )
    style = kokoro._kokoro.get_voice_style("af_heart")[len(tokens) - 1].reshape(1, -1).astype(np.float32)
    feeds = {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": style, "speed": np.array([1.0], np.float32)}
    (expected,) = whole.run(None, feeds)
    windowless = render(kokoro, "Good morning, how can I help?", "af_heart", 1.0)
    np.testing.assert_array_equal(windowless, expected)


def envelope(audio: np.ndarray, frame: int = 240) -> np.ndarray:
    usable = len(audio) // frame * frame
    return np.sqrt((audio[:usable].reshape(-1, frame) ** 2).mean(axis=1))


def test_a_first_piece_comes_in_windows_and_is_the_same_speech(kokoro):
    text = "Strong performances against the best teams usually mean a team is peaking at the right time."
    whole = fit_edges(render(kokoro, text, "af_heart", 1.0), kokoro.sample_rate, text)
    fitter = EdgeFitter(kokoro.sample_rate, text)
    parts = [fitter.feed(part) for part in kokoro.stream(text, "af_heart", 1.0, first=True)]
    windowed = np.concatenate([*parts, fitter.close()])
    assert len(parts) == 2
    assert 0 < len(parts[0]) < len(whole) / 2  # the first part is a fraction of the piece
    # the silence the windows skip is what the edge fit cuts from the whole piece anyway
    assert abs(len(windowed) - len(whole)) <= 0.05 * kokoro.sample_rate
    # the same sounds at the same times: loudness contours agree (a misplaced window would not)
    n = min(len(whole), len(windowed))
    assert np.corrcoef(envelope(whole[:n]), envelope(windowed[:n]))[0, 1] > 0.9
    assert not list(kokoro.stream(text, "af_heart", 1.0, first=False))[1:]  # later pieces: whole


def test_a_later_piece_in_windows_is_the_same_speech(kokoro, monkeypatch):
    """`tts.later_window_s`: a later piece comes in parts another reply's first piece can come
    between (scheduler.py), and is the same speech as the piece decoded whole."""
    text = "Strong performances against the best teams usually mean a team is peaking at the right time."
    whole = fit_edges(render(kokoro, text, "af_heart", 1.0), kokoro.sample_rate, text)
    monkeypatch.setattr(kokoro, "_later_frames", 48)  # 1.2 s
    parts = list(kokoro.stream(text, "af_heart", 1.0, first=False))
    windowed = fit_edges(np.concatenate(parts), kokoro.sample_rate, text)
    assert len(parts) >= 3
    assert abs(len(windowed) - len(whole)) <= 0.05 * kokoro.sample_rate
    n = min(len(whole), len(windowed))
    assert np.corrcoef(envelope(whole[:n]), envelope(windowed[:n]))[0, 1] > 0.9


def test_windows_skip_the_silence_and_end_in_quiet_frames():
    energy = np.full(200, -9.4)
    energy[12:180] = 5.0
    energy[[60, 80]] = -3.0  # pauses between words
    windows = plan(200, 16, 0.5, energy=energy)
    assert windows[0].start == 10 and windows[-1].end == 182  # SOUND_PAD frames each side
    # planned: ceil(0.5 * (172 + 12 + 8) / 1.5) = 64 frames, to frame 74; the pause 6 frames on
    # is within an eighth of that (8); the one 14 frames back is not taken (never shorter)
    assert [w.end for w in windows] == [80, 182]
    # around the sound, fewer frames of the silence are decoded than at the join between windows
    assert windows[0].lo == 10 - EDGE_CONTEXT_FRAMES and windows[-1].hi == 182 + EDGE_CONTEXT_FRAMES
    # past the first window only a few frames are decoded: they hold back the first audio
    assert windows[0].hi == 80 + FIRST_LOOKAHEAD_FRAMES and windows[1].lo == 80 - CONTEXT_FRAMES
