"""Kokoro-82M through the `kokoro` package on CUDA (the gpu-24gb profile).

Thin on purpose: its weights come from the hub on the operator's machine, so this path cannot run
in offline CI (see README, "What was and wasn't run").
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from configs import Settings

from .backend import Stop, SynthesisStopped, UnknownVoice

# The American and British English voices of Kokoro-82M v1.0.
ENGLISH_VOICES = [
    "af_alloy",
    "af_aoede",
    "af_bella",
    "af_heart",
    "af_jessica",
    "af_kore",
    "af_nicole",
    "af_nova",
    "af_river",
    "af_sarah",
    "af_sky",
    "am_adam",
    "am_echo",
    "am_eric",
    "am_fenrir",
    "am_liam",
    "am_michael",
    "am_onyx",
    "am_puck",
    "am_santa",
    "bf_alice",
    "bf_emma",
    "bf_isabella",
    "bf_lily",
    "bm_daniel",
    "bm_fable",
    "bm_george",
    "bm_lewis",
]


class KokoroTorch:
    name = "torch"
    sample_rate = 24000

    def __init__(self, settings: Settings) -> None:
        from kokoro import KModel, KPipeline

        repo = settings.model_path(settings.tts.model)
        model = KModel(repo_id=repo).to(settings.tts.device).eval()
        self._pipelines = {code: KPipeline(lang_code=code, repo_id=repo, model=model) for code in ("a", "b")}

    @property
    def voices(self) -> list[str]:
        return ENGLISH_VOICES

    def stream(
        self, text: str, voice: str, speed: float, stop: Stop | None = None, *, first: bool
    ) -> Iterator[np.ndarray]:
        if voice not in ENGLISH_VOICES:
            raise UnknownVoice(voice, ENGLISH_VOICES)
        pipeline = self._pipelines[voice[0]]
        # A forward pass cannot be interrupted; on a GPU one takes milliseconds, so a stop is
        # honoured between the pipeline's chunks. On a GPU a whole piece is rendered in
        # milliseconds too, so it is not cut into decoder windows (`first` changes nothing).
        for result in pipeline(text, voice=voice, speed=speed):
            if stop is not None and stop.is_set():
                raise SynthesisStopped(text)
            if result.audio is not None:
                yield result.audio.cpu().numpy().astype(np.float32)
