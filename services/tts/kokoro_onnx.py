"""Kokoro-82M through onnxruntime (the cpu profile): int8 weights, espeak-ng phonemes, offline.

The graph runs as its two halves (kokoro_graph.py): the encoder once per piece, the decoder in
windows (windows.py) for a reply's first piece, a first window so its first audio does not wait
for the whole piece; later pieces whole (they have the audio before them to be ready in), or with
`tts.later_window_s` in windows of about that length, so that another call's first piece waits
one window behind them and not a whole piece (scheduler.py); with it, the rest of a first piece
after its first window too.
The decoder is onnxruntime's int8 graph, or on CPUs with AMX its generator in bf16 (generator.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from configs import Settings

from .backend import Stop, SynthesisStopped, UnknownVoice
from .generator import decoder
from .kokoro_graph import ALIGNED, CURVE_STEPS, ENERGY, FRAME_SAMPLES, PITCH, halves
from .windows import Stitcher, plan, spans

log = logging.getLogger("halfsec.tts")

LANG = "en-us"
MAX_TOKENS = 510  # Kokoro's context: longer phoneme strings are decoded in batches
# The decoder's speed (seconds of work per second of audio) is the mean of its recent runs,
# weighted to the last ones: it changes within a call as vLLM starts and stops decoding beside it.
RATIO_WEIGHT = 0.3
RATIO_MARGIN = 1.2  # the first window planned for a decoder this much slower than measured
WARM_FRAMES = 128  # 3.2 s: first windows longer than this are rare (a first piece of ~20 words)


class KokoroOnnx:
    name = "onnx"
    sample_rate = 24000

    def __init__(self, settings: Settings) -> None:
        import onnxruntime as ort
        from kokoro_onnx import Kokoro

        opts = settings.tts
        model, voices = Path(settings.model_path(opts.model)), Path(settings.model_path(opts.voices))
        encoder, decoder_path = halves(model)
        for path, key in (
            (model, "tts.model"),
            (encoder, "tts.model"),
            (decoder_path, "tts.model"),
            (voices, "tts.voices"),
        ):
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
        self._ort = ort
        self._encoder = ort.InferenceSession(str(encoder), so, providers=["CPUExecutionProvider"])
        self._decoder = decoder(opts.generator, ort, model, decoder_path, so, opts.intra_op_threads)
        # kokoro-onnx for what comes before the graph: phonemes, tokens, voices
        self._kokoro = Kokoro.from_session(self._encoder, str(voices))
        self._voices = sorted(self._kokoro.get_voices())
        self._first_frames = round((opts.first_window_s or 0) * self.sample_rate / FRAME_SAMPLES)
        self._later_frames = round((opts.later_window_s or 0) * self.sample_rate / FRAME_SAMPLES)
        self._decode_ratio = 0.5  # until the first run (the service's warm-up) measures it
        log.info(
            "loaded %s (%d voices, decoder %s) in %.2fs",
            model.name,
            len(self._voices),
            type(self._decoder).__name__,
            time.perf_counter() - t0,
        )

    @property
    def voices(self) -> list[str]:
        return self._voices

    def stream(
        self, text: str, voice: str, speed: float, stop: Stop | None = None, *, first: bool
    ) -> Iterator[np.ndarray]:
        if voice not in self._voices:
            raise UnknownVoice(voice, self._voices)
        from kokoro_onnx.chunker import split_phonemes

        options = self._ort.RunOptions()
        if stop is not None:
            stop.on_set(lambda: setattr(options, "terminate", True))
        phonemes = " ".join(self._kokoro.tokenizer.phonemize(text, LANG).split())
        batches = split_phonemes(phonemes, MAX_TOKENS)
        if not batches:
            raise ValueError(f"nothing to synthesise: {text!r} has no phonemes")
        style_rows = self._kokoro.get_voice_style(voice)
        for n, batch in enumerate(batches):
            tokens = self._kokoro.tokenizer.tokenize(batch)
            style = np.asarray(style_rows[min(len(tokens), len(style_rows)) - 1], np.float32).reshape(1, -1)
            feeds = {
                "tokens": np.array([[0, *tokens, 0]], np.int64),
                "style": style,
                "speed": np.array([speed], np.float32),
            }
            aligned, pitch, energy = self._run(text, options, self._encoder.run, None, feeds, options)
            first_frames = self._first_frames if first and n == 0 else 0
            per_frame = energy.reshape(-1, CURVE_STEPS).mean(axis=1)
            ratio = self._decode_ratio * RATIO_MARGIN
            if first_frames or not self._later_frames:
                windows = plan(
                    aligned.shape[2],
                    first_frames,
                    ratio,
                    energy=per_frame,
                    step=self._decoder.length_step,
                    rest=self._later_frames,
                )
            else:
                windows = spans(aligned.shape[2], self._later_frames, energy=per_frame, step=self._decoder.length_step)
            stitcher = Stitcher(FRAME_SAMPLES)
            for i, w in enumerate(windows):
                if stop is not None and stop.is_set():
                    raise SynthesisStopped(text)
                part = {
                    ALIGNED: aligned[:, :, w.lo : w.hi],
                    PITCH: pitch[:, w.lo * CURVE_STEPS : w.hi * CURVE_STEPS],
                    ENERGY: energy[:, w.lo * CURVE_STEPS : w.hi * CURVE_STEPS],
                    "style": style,
                }
                t0 = time.perf_counter()
                audio = self._run(text, options, self._decoder, part, options)
                measured = (time.perf_counter() - t0) / ((w.hi - w.lo) * FRAME_SAMPLES / self.sample_rate)
                self._decode_ratio += RATIO_WEIGHT * (measured - self._decode_ratio)
                yield stitcher.add(w, np.asarray(audio, np.float32).ravel(), last=i == len(windows) - 1)

    def warm_lengths(self, text: str, voice: str) -> None:
        """Decode `text`'s frames at each length a first piece's windows commonly have, for a
        decoder that builds kernels per length (generator.py: the first run at a length costs
        50-150 ms more); ~10 s at start with bf16, nothing with onnxruntime's graph."""
        step = self._decoder.length_step
        if step == 1:
            return
        tokens = self._kokoro.tokenizer.tokenize(self._kokoro.tokenizer.phonemize(text, LANG))[: MAX_TOKENS - 2]
        style = np.asarray(self._kokoro.get_voice_style(voice)[len(tokens) - 1], np.float32).reshape(1, -1)
        feeds = {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": style, "speed": np.array([1.0], np.float32)}
        options = self._ort.RunOptions()
        aligned, pitch, energy = self._encoder.run(None, feeds, options)
        for n in range(3 * step, min(aligned.shape[2], WARM_FRAMES) + 1, step):
            part = {
                ALIGNED: aligned[:, :, :n],
                PITCH: pitch[:, : n * CURVE_STEPS],
                ENERGY: energy[:, : n * CURVE_STEPS],
            }
            self._decoder(part | {"style": style}, options)

    def _run(self, text: str, options: Any, run: Callable[..., Any], *args: Any) -> Any:
        try:
            return run(*args)
        except Exception:
            if options.terminate:  # onnxruntime's own error for a terminated run
                raise SynthesisStopped(text) from None
            raise
