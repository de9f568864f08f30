"""Kokoro-82M through onnxruntime (the cpu profile): int8 weights, espeak-ng phonemes, offline."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from configs import Settings

from .backend import UnknownVoice

log = logging.getLogger("halfsec.tts")


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
        # (RTF 0.57 vs 0.25 on 2 cores, FACTS.md): intra-op = our cores, inter-op = 1.
        so = ort.SessionOptions()
        so.intra_op_num_threads = opts.intra_op_threads
        so.inter_op_num_threads = 1
        # No spin-waiting: while vLLM decodes on the other core, spinning threads starve each
        # other (measured: 1.8 s -> 1.4 s for a 1.5 s clip with one core busy).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        t0 = time.perf_counter()
        session = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        self._kokoro = Kokoro.from_session(session, str(voices))
        self._voices = sorted(self._kokoro.get_voices())
        log.info("loaded %s (%d voices) in %.2fs", model.name, len(self._voices), time.perf_counter() - t0)

    @property
    def voices(self) -> list[str]:
        return self._voices

    def synthesize(self, text: str, voice: str, speed: float) -> np.ndarray:
        if voice not in self._voices:
            raise UnknownVoice(voice, self._voices)
        audio, _ = self._kokoro.create(text, voice=voice, speed=speed, lang="en-us")
        return np.asarray(audio, dtype=np.float32)
