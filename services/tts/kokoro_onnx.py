"""Kokoro-82M through onnxruntime (the cpu profile): int8 weights, espeak-ng phonemes, offline."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from configs import Settings

from .backend import Stop, SynthesisStopped, UnknownVoice

log = logging.getLogger("halfsec.tts")


class _StoppableSession:
    """The onnxruntime session as kokoro-onnx sees it, but every run carries our RunOptions: a
    barge-in sets its `terminate`, and onnxruntime abandons the run at the next operator (~ms)
    instead of finishing seconds of audio nobody will hear."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.run_options: Any = None  # set per synthesis; one runs at a time (the service's queue)

    def run(self, output_names: Any, inputs: Any, run_options: Any = None) -> Any:
        return self._session.run(output_names, inputs, self.run_options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class KokoroOnnx:
    name = "onnx"
    sample_rate = 24000

    def __init__(self, settings: Settings) -> None:
        import onnxruntime as ort
        from kokoro_onnx import Kokoro

        opts = settings.tts
        model, voices = Path(settings.model_path(opts.model)), Path(settings.model_path(opts.voices))
        for path, key in ((model, "tts.model"), (voices, "tts.voices")):
            if not path.is_file():
                raise FileNotFoundError(f"TTS file not found at {path} ({key}); run `halfsec models`")
        # kokoro-onnx's default session spreads over every core and runs ~2x slower here
        # (RTF 0.57 vs 0.25 on 2 cores, measured here): intra-op = our cores, inter-op = 1.
        so = ort.SessionOptions()
        so.intra_op_num_threads = opts.intra_op_threads
        so.inter_op_num_threads = 1
        # No spin-waiting: while vLLM decodes on the other core, spinning threads starve each
        # other (measured: 1.8 s -> 1.4 s for a 1.5 s clip with one core busy).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Every piece has its own input length, and onnxruntime keeps a memory plan per input
        # shape it has seen: RSS climbed 399 -> 497 MB over 90 pieces and kept stepping up with
        # each new length (the soak's TTS +43 %). Without the plans it levels off at 436 MB after
        # ~30 pieces, at the same speed (90 pieces in 140 s either way; docs/reliability.md).
        so.enable_mem_pattern = False
        t0 = time.perf_counter()
        session = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        self._ort = ort
        self._session = _StoppableSession(session)
        self._kokoro = Kokoro.from_session(session, str(voices))
        self._kokoro.sess = self._session
        self._voices = sorted(self._kokoro.get_voices())
        log.info("loaded %s (%d voices) in %.2fs", model.name, len(self._voices), time.perf_counter() - t0)

    @property
    def voices(self) -> list[str]:
        return self._voices

    def synthesize(self, text: str, voice: str, speed: float, stop: Stop | None = None) -> np.ndarray:
        if voice not in self._voices:
            raise UnknownVoice(voice, self._voices)
        options = self._ort.RunOptions()
        self._session.run_options = options
        if stop is not None:
            stop.on_set(lambda: setattr(options, "terminate", True))
        try:
            audio, _ = self._kokoro.create(text, voice=voice, speed=speed, lang="en-us")
        except Exception:
            if options.terminate:  # onnxruntime's own error for a terminated run
                raise SynthesisStopped(text) from None
            raise
        return np.asarray(audio, dtype=np.float32)
