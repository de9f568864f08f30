"""Kokoro's decoder cut for OpenVINO (services/tts/generator.py): the float generator is the int8
graph's speech, `auto` takes bf16 only on a CPU that computes in it, and the bf16 decoder's audio is
the int8 decoder's (OpenVINO runs bf16 as float32 on a CPU without it: the test runs anywhere)."""

from pathlib import Path

import numpy as np
import onnx
import pytest

from services.tts import generator
from services.tts.backend import render
from services.tts.bench import log_spectral_distance
from services.tts.edges import fit_edges
from services.tts.kokoro_graph import (
    ALIGNED,
    ENERGY,
    FEATURES,
    FRAME_SAMPLES,
    HARMONICS,
    PITCH,
    SPECTRUM,
    decoder_parts,
    halves,
)

from .conftest import required

TEXT = "Strong performances against the best teams usually mean a team is peaking at the right time."


def level_db(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(b**2) / np.mean(a**2)))


@pytest.mark.parametrize(("bf16", "expected"), [(True, "openvino-bf16"), (False, "onnxruntime")])
def test_auto_takes_bf16_only_where_the_cpu_computes_in_it(monkeypatch, bf16, expected):
    monkeypatch.setattr(generator, "has_bf16_units", lambda: bf16)
    assert generator.chosen("auto") == expected
    assert generator.chosen("onnxruntime") == "onnxruntime"


@pytest.fixture(scope="module")
def backends(settings):
    required(settings)
    from services.tts.kokoro_onnx import KokoroOnnx

    def backend(name: str) -> KokoroOnnx:
        return KokoroOnnx(settings.model_copy(update={"tts": settings.tts.model_copy(update={"generator": name})}))

    return backend("onnxruntime"), backend("openvino-bf16")


def test_the_float_generator_between_front_and_tail_is_the_int8_decoder(backends, settings):
    import onnxruntime as ort

    int8 = backends[0]
    model = Path(settings.model_path(settings.tts.model))
    encoder, decoder = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in halves(model))
    front, floats, tail = (
        ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in decoder_parts(model)
    )
    tokens = int8._kokoro.tokenizer.tokenize(int8._kokoro.tokenizer.phonemize(TEXT, "en-us"))
    style = int8._kokoro.get_voice_style("af_heart")[len(tokens) - 1].reshape(1, -1).astype(np.float32)
    feeds = {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": style, "speed": np.array([1.0], np.float32)}
    aligned, pitch, energy = encoder.run(None, feeds)
    curves = {ALIGNED: aligned, PITCH: pitch, ENERGY: energy, "style": style}
    (expected,) = decoder.run(None, curves)
    features, harmonics = front.run(None, curves)
    (spectrum,) = floats.run(None, {FEATURES: features, HARMONICS: harmonics, "style": style})
    (audio,) = tail.run(None, {SPECTRUM: spectrum})
    expected, audio = np.ravel(expected), np.ravel(audio)
    assert audio.shape == expected.shape
    assert not any(n.op_type == "ConvInteger" for n in onnx.load(str(decoder_parts(model)[1])).graph.node)
    # int8 activations against float ones: close, not equal (measured 1.8-2.9 dB, level +-0.15)
    assert log_spectral_distance(expected, audio) < 4.0
    assert abs(level_db(expected, audio)) < 0.5


def test_the_bf16_decoder_speaks_the_int8_decoders_speech(backends):
    int8, bf16 = backends
    assert type(bf16._decoder).__name__ == "Bf16Decoder"
    expected = fit_edges(render(int8, TEXT, "af_heart", 1.0), int8.sample_rate, TEXT)
    audio = fit_edges(render(bf16, TEXT, "af_heart", 1.0), bf16.sample_rate, TEXT)
    assert abs(len(audio) - len(expected)) <= 0.02 * int8.sample_rate  # the same durations
    n = min(len(audio), len(expected))
    assert log_spectral_distance(expected[:n], audio[:n]) < 5.0
    assert abs(level_db(expected[:n], audio[:n])) < 1.0
    # in windows too, at lengths widened to its step (a first window, then the rest in
    # `tts.later_window_s` windows)
    parts = list(bf16.stream(TEXT, "af_heart", 1.0, first=True))
    assert len(parts) >= 2 and abs(sum(map(len, parts)) - len(render(bf16, TEXT, "af_heart", 1.0))) < bf16.sample_rate


def test_the_bf16_decoder_decodes_lengths_of_its_step_and_gives_back_what_was_asked(backends):
    int8, bf16 = backends
    tokens = int8._kokoro.tokenizer.tokenize(int8._kokoro.tokenizer.phonemize(TEXT, "en-us"))
    style = int8._kokoro.get_voice_style("af_heart")[len(tokens) - 1].reshape(1, -1).astype(np.float32)
    feeds = {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": style, "speed": np.array([1.0], np.float32)}
    aligned, pitch, energy = int8._encoder.run(None, feeds)
    for frames in (37, 40):  # padded to 40 with its last frame, and already a multiple of 8
        part = {ALIGNED: aligned[:, :, :frames], PITCH: pitch[:, : 2 * frames], ENERGY: energy[:, : 2 * frames]}
        audio = bf16._decoder(part | {"style": style}, int8._ort.RunOptions())
        assert audio.shape == (frames * FRAME_SAMPLES,)


def test_a_missing_part_names_the_fix(settings, tmp_path):
    import onnxruntime as ort

    (tmp_path / "kokoro.onnx").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="halfsec models"):
        generator.Bf16Decoder(ort, tmp_path / "kokoro.onnx", ort.SessionOptions(), 2)
