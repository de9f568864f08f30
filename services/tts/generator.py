"""Kokoro's decoder for the onnx backend: one onnxruntime graph, or on a CPU with bf16 matrix
units (Intel AMX), its generator's convolutions in bf16 on OpenVINO (kokoro_graph.py cuts it).

Per 25-ms frame, in-process, two threads, on a 2-core Xeon with AMX (2026-12-06): the int8 graph
on onnxruntime 11-15 ms; the front and tail on onnxruntime with the generator on OpenVINO in bf16
6-8 ms, at a log-spectral distance to the int8 audio (2.5-3.3 dB) like that of the float graph on
onnxruntime (1.8-2.9 dB), and the same level (+-0.15 dB). The whole decoder in bf16 on OpenVINO
was as fast but 2.6-3.4 dB quieter: the harmonic source's phase (a running sum) and its STFT do
not survive bf16. Without AMX, bf16 is emulated and slower than int8, so "auto" keeps
onnxruntime there (docs/benchmarks.md).

OpenVINO builds kernels for each input length it meets (50-150 ms the first time, measured);
windows.py rounds the frames it decodes to `LENGTH_STEP` so that few lengths come, and the
service warms the common ones at start.
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import Any, Literal

import numpy as np

from configs.settings import TtsGenerator

from .kokoro_graph import FEATURES, HARMONICS, SPECTRUM, decoder_parts

log = logging.getLogger("halfsec.tts")

LENGTH_STEP = 8  # frames: decoded lengths are rounded up to a multiple of this (windows.py)


def has_bf16_matrix_units() -> bool:
    """The CPU has AMX's bf16 tiles (Linux: the `amx_bf16` flag)."""
    if platform.system() != "Linux":
        return False
    try:
        return " amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def chosen(generator: TtsGenerator) -> Literal["onnxruntime", "openvino-bf16"]:
    """What `auto` means on this machine: OpenVINO's bf16 where the CPU has AMX and OpenVINO is
    installed, onnxruntime's int8 elsewhere."""
    if generator != "auto":
        return generator
    if not has_bf16_matrix_units():
        return "onnxruntime"
    try:
        import openvino  # noqa: F401
    except ImportError:
        log.warning("this CPU has AMX but OpenVINO is not installed: Kokoro's decoder stays int8 (slower)")
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
        }
        self._generator = ov.Core().compile_model(str(generator), "CPU", config).create_infer_request()
        self.length_step = LENGTH_STEP

    def __call__(self, feeds: dict[str, np.ndarray], run_options: Any) -> np.ndarray:
        features, harmonics = self._front.run(None, feeds, run_options)
        inputs = {FEATURES: features, HARMONICS: harmonics, "style": feeds["style"]}
        if run_options.terminate:  # stopped during the front: the backend makes this SynthesisStopped
            raise RuntimeError("synthesis terminated")
        spectrum = next(iter(self._generator.infer(inputs).values()))
        (audio,) = self._tail.run(None, {SPECTRUM: np.asarray(spectrum)}, run_options)
        return np.asarray(audio)


def decoder(generator: TtsGenerator, ort: Any, model: Path, decoder_path: Path, options: Any, threads: int) -> Any:
    if chosen(generator) == "openvino-bf16":
        return Bf16Decoder(ort, model, options, threads)
    return OnnxDecoder(ort, decoder_path, options)
