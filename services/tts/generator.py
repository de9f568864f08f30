"""Kokoro's decoder for the onnx backend: one onnxruntime graph, or on a CPU that computes in bf16
(Intel AMX, AVX-512's bf16 on AMD Zen 4), its generator's convolutions in bf16 on OpenVINO
(kokoro_graph.py cuts it).

Per 25-ms frame, in-process, two threads, on a 2-core Xeon with AMX (2026-12-06): the int8 graph
on onnxruntime 11-15 ms; the front and tail on onnxruntime with the generator on OpenVINO in bf16
6-8 ms, at a log-spectral distance to the int8 audio (2.5-3.3 dB) like that of the float graph on
onnxruntime (1.8-2.9 dB), and the same level (+-0.15 dB). The whole decoder in bf16 on OpenVINO
was as fast but 2.6-3.4 dB quieter: the harmonic source's phase (a running sum) and its STFT do
not survive bf16. On a 2-core AMD EPYC Zen 4 (`avx512_bf16`, no AMX; 2026-12-07), the 30
held-out replies' first pieces, alternating, three rounds: first audio P50 / P90 250 / 354 ms
against 311 / 433 for int8, RTF 0.42 against 0.49; 2.6 dB from the int8 audio, level +0.24 dB.
Without bf16 instructions OpenVINO runs float32, slower to first audio than int8 on an AVX2 EPYC
(P50 771-808 ms against 557-596): "auto" keeps onnxruntime there (docs/benchmarks.md).

OpenVINO builds kernels and buffers for each input length it meets and keeps them: the first
run at a length took 50-150 ms more, and 120 runs at random lengths of 20-160 frames grew the
process by 830 MB and still climbing; at multiples of 8 frames up to 160 it levelled off at +210
MB after the first 60 (measured in-process). So every decode is `LENGTH_STEP` frames long or a
multiple, and OpenVINO keeps the kernels of `RUNTIME_CACHE_LENGTHS` lengths at most:
windows.py widens a window with the piece's own frames, and what it cannot (a piece decoded
whole) the decoder pads with copies of the piece's last frame (its closing silence) and cuts
away. The service warms the lengths of common first windows at start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np

from configs.settings import TtsGenerator

from ..cpu_features import has_bf16_units
from .kokoro_graph import (
    ALIGNED,
    CURVE_STEPS,
    ENERGY,
    FEATURES,
    FRAME_SAMPLES,
    HARMONICS,
    PITCH,
    SPECTRUM,
    decoder_parts,
)

log = logging.getLogger("halfsec.tts")

LENGTH_STEP = 8  # frames: decoded lengths are rounded up to a multiple of this (windows.py)
RUNTIME_CACHE_LENGTHS = 32


def chosen(generator: TtsGenerator) -> Literal["onnxruntime", "openvino-bf16"]:
    """What `auto` means on this machine: OpenVINO's bf16 where the CPU computes in bf16 and
    OpenVINO is installed, onnxruntime's int8 elsewhere."""
    if generator != "auto":
        return generator
    if not has_bf16_units():
        return "onnxruntime"
    try:
        import openvino  # noqa: F401
    except ImportError:
        log.warning("this CPU computes in bf16 but OpenVINO is not installed: Kokoro's decoder stays int8 (slower)")
        return "onnxruntime"
    return "openvino-bf16"


class OnnxDecoder:
    """The decoder graph on onnxruntime."""

    def __init__(self, ort: Any, path: Path, options: Any) -> None:
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.length_step = 1

    def __call__(self, feeds: dict[str, np.ndarray], run_options: Any) -> np.ndarray:
        (audio,) = self._session.run(None, feeds, run_options)
        return np.asarray(audio)


class Bf16Decoder:
    """Front and tail on onnxruntime, the generator on OpenVINO in bf16. A stop set mid-run
    takes effect at the next of the three parts (the generator is ~85 % of the time)."""

    def __init__(self, ort: Any, model: Path, options: Any, threads: int) -> None:
        import openvino as ov

        front, generator, tail = decoder_parts(model)
        for path in (front, generator, tail):
            if not path.is_file():
                raise FileNotFoundError(f"TTS file not found at {path} (tts.generator); run `halfsec models`")
        self._front = ort.InferenceSession(str(front), options, providers=["CPUExecutionProvider"])
        self._tail = ort.InferenceSession(str(tail), options, providers=["CPUExecutionProvider"])
        config = {
            "INFERENCE_PRECISION_HINT": "bf16",
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "ENABLE_CPU_PINNING": False,  # the services' own core plan (configs) decides where it runs
            # Kernels kept for this many input lengths, least recently used dropped: at OpenVINO's
            # default (5000) 3x40 runs at random multiples of 8 frames up to 320 grew the process
            # 985 -> 1106 -> 1158 MB; at 24, 926 -> 943 -> 889 (in-process). 32: the 14 lengths
            # of first windows (24-128 frames, warmed at start) come every reply and stay.
            "CPU_RUNTIME_CACHE_CAPACITY": RUNTIME_CACHE_LENGTHS,
        }
        self._generator = ov.Core().compile_model(str(generator), "CPU", config).create_infer_request()
        self.length_step = LENGTH_STEP

    def __call__(self, feeds: dict[str, np.ndarray], run_options: Any) -> np.ndarray:
        frames = feeds[ALIGNED].shape[2]
        if short := -frames % self.length_step:
            feeds = feeds | {
                ALIGNED: np.pad(feeds[ALIGNED], ((0, 0), (0, 0), (0, short)), mode="edge"),
                PITCH: np.pad(feeds[PITCH], ((0, 0), (0, short * CURVE_STEPS)), mode="edge"),
                ENERGY: np.pad(feeds[ENERGY], ((0, 0), (0, short * CURVE_STEPS)), mode="edge"),
            }
        features, harmonics = self._front.run(None, feeds, run_options)
        inputs = {FEATURES: features, HARMONICS: harmonics, "style": feeds["style"]}
        if run_options.terminate:  # stopped during the front: the backend makes this SynthesisStopped
            raise RuntimeError("synthesis terminated")
        spectrum = next(iter(self._generator.infer(inputs).values()))
        (audio,) = self._tail.run(None, {SPECTRUM: np.asarray(spectrum)}, run_options)
        return np.asarray(audio).reshape(-1)[: frames * FRAME_SAMPLES]


def decoder(
    generator: TtsGenerator, ort: Any, model: Path, decoder_path: Path, options: Any, threads: int
) -> OnnxDecoder | Bf16Decoder:
    if chosen(generator) == "openvino-bf16":
        return Bf16Decoder(ort, model, options, threads)
    return OnnxDecoder(ort, decoder_path, options)
