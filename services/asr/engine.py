"""The faster-whisper model behind services/asr, and the two ways it decodes.

`transcribe` is the offline path (faster-whisper's own loop over 30 s windows): the HTTP endpoint
and the bench's reference WER. `decode` is the streaming path: one piece of an utterance (never
longer than a Whisper window), encoded at its own length plus a little padding instead of a
padded 30 s window, which is most of the cost of a short decode. A short window is less sure of
itself, though: a decode that stutters or breaks off ("an old-s-y-y-y-") is done again over the
full window, which Whisper was trained on. Both paths drop what Whisper's own rules call silence
or a repetition loop, so silence, noise and music yield no words.
"""

from __future__ import annotations

import logging
import math
import re
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from configs import Settings
from configs.settings import HUB_PREFIX

from .protocol import SAMPLE_RATE, Transcript

log = logging.getLogger("halfsec.asr")

WINDOW_S = 30.0  # Whisper's input window
_FRAMES_PER_S = 100  # mel frames per second; the encoder halves them
# Signs a short-window decode went astray. Measured on one LibriVox sentence ("He was not an
# ill-disposed young man") cut at 80 slightly different places: with 1 s of padding, 30 decodes
# stuttered into "an old-s-y-y-y-y" and lost "young man"; over the full window all 80 kept it.
_STUTTER = re.compile(r"(?:\b\w{1,2}-){2,}")  # "s-y-y-", "s-s-y-"
# A word broken off at the end ("I'll last to be r-"). Trailing dots are not a sign: in a window
# of `asr.min_window_s` they mark a hesitation ("Um...", "You know...", "What I'm..."). On the dev
# set, LibriVox and the call turns (126 utterances, each decoded alone), 5 decodes ended in "...",
# the full-window redo gave the same words for all 5, and made their finals 300-360 ms late: half
# of `halfsec bench asr`'s late finals.
_BROKEN_OFF = re.compile(r"\w-\W*$")


_WORD = re.compile(r"[\w']+")


def doubtful(text: str) -> bool:
    """A decode that stutters, breaks off in a word, or says the same three words twice: words may
    be missing from it, or it ran on into the padding (whisper-base, measured: "... than he was?
    Had he married a more amiable woman he" after a sentence that began "Had he married")."""
    if _STUTTER.search(text) or _BROKEN_OFF.search(text):
        return True
    words = _WORD.findall(text.lower())
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    return len(set(trigrams)) < len(trigrams)


@dataclass
class Decoded:
    text: str
    audio_s: float
    decode_ms: float
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    dropped: str | None = None  # why the text was dropped, if it was
    dropped_text: str = ""  # what the gates dropped: did Whisper hear words, or only "uh"?
    redecoded: bool = False  # a second decode over a wider window (a doubtful piece's, a wordless one's)
    # with timestamps: Whisper's phrases as (end in seconds, text); the last may be unfinished
    phrases: list[tuple[float, str]] = field(default_factory=list)


def compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


class WhisperEngine:
    def __init__(self, settings: Settings) -> None:
        from faster_whisper import WhisperModel  # heavy import: only in the service process
        from faster_whisper.tokenizer import Tokenizer

        opts = settings.asr
        path = settings.model_path(opts.model)
        if not opts.model.startswith(HUB_PREFIX) and not (Path(path) / "model.bin").is_file():
            raise FileNotFoundError(f"ASR model not found at {path} (asr.model={opts.model!r}); run `halfsec models`")
        t0 = time.perf_counter()
        self.model = WhisperModel(
            path,
            device=opts.device,
            compute_type=opts.compute_type,
            cpu_threads=opts.cpu_threads,
            num_workers=opts.num_workers,
        )
        self.opts = opts
        self.name = opts.model
        self.language = opts.language or "en"
        self._tokenizer = Tokenizer(
            self.model.hf_tokenizer,
            self.model.model.is_multilingual,
            task="transcribe",
            language=self.language,
        )
        self._prompt = self.model.get_prompt(self._tokenizer, [], without_timestamps=True)
        self._prompt_ts = self.model.get_prompt(self._tokenizer, [], without_timestamps=False)
        log.info("loaded %s in %.2fs", path, time.perf_counter() - t0)

    def transcribe(self, audio: np.ndarray) -> Transcript:
        """A whole recording, any length: faster-whisper's own windowing."""
        t0 = time.perf_counter()
        segments, info = self.model.transcribe(
            audio,
            language=self.language,
            beam_size=self.opts.beam_size,
            # Each request is one user turn: text from an earlier turn must not steer this one.
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,  # the caller's VAD already cut the turn
            no_speech_threshold=self.opts.no_speech_threshold,
            log_prob_threshold=self.opts.log_prob_threshold,
            compression_ratio_threshold=self.opts.compression_ratio_threshold,
        )
        text = " ".join(s.text.strip() for s in segments if not self._silence(s.no_speech_prob, s.avg_logprob))
        return Transcript(
            text=text.strip(),
            language=info.language,
            audio_s=len(audio) / SAMPLE_RATE,
            decode_ms=(time.perf_counter() - t0) * 1000.0,
        )

    def decode(
        self,
        audio: np.ndarray,
        timestamps: bool = False,
        retry_doubtful: bool = True,
        window_s: float | None = None,
    ) -> Decoded:
        """One piece of speech (at most a Whisper window), greedy, gated. With `timestamps`,
        also where Whisper ends each phrase: a few tokens more, and safe places to cut. With
        `retry_doubtful`, a doubtful decode is done again over the full 30 s window (costs
        ~3x; worth it for transcripts a reply is built on, not for interims). `window_s`: a
        second decode over a wider window than the streaming one, straight away (at least the
        audio and its padding)."""
        t0 = time.perf_counter()
        audio_s = len(audio) / SAMPLE_RATE
        if audio_s > WINDOW_S:
            raise ValueError(f"a streamed piece is at most {WINDOW_S:.0f} s, got {audio_s:.1f} s")
        features = self.model.feature_extractor(audio)
        out = self._decode(features, audio_s, self._window_s(audio_s, window_s), timestamps)
        out.redecoded = window_s is not None
        if retry_doubtful and window_s is None and self._window_s(audio_s) < WINDOW_S and doubtful(out.text):
            log.info("doubtful %r: decoding again over the full window", out.text)
            out = self._decode(features, audio_s, WINDOW_S, timestamps)
            out.redecoded = True
        if self._silence(out.no_speech_prob, out.avg_logprob):
            out.dropped = "no speech"
        elif out.compression_ratio > self.opts.compression_ratio_threshold:
            out.dropped = "repetition"
        if out.dropped:
            log.info(
                "dropped %r (%s, no_speech %.2f, logprob %.2f, ratio %.2f)",
                out.text,
                out.dropped,
                out.no_speech_prob,
                out.avg_logprob,
                out.compression_ratio,
            )
            out.dropped_text, out.text, out.phrases = out.text, "", []
        out.decode_ms = (time.perf_counter() - t0) * 1000.0
        return out

    def _window_s(self, audio_s: float, at_least: float | None = None) -> float:
        """The window a streamed piece is encoded in: its audio, padding, and at least
        `asr.min_window_s` (see the setting for why), or `at_least` where that is wider."""
        floor = max(self.opts.min_window_s, at_least or 0.0)
        return min(WINDOW_S, max(audio_s + self.opts.decode_pad_s, floor))

    def _decode(self, features: np.ndarray, audio_s: float, window_s: float, timestamps: bool) -> Decoded:
        # an even number of mel frames (the encoder's stride is 2), padded with zeros as
        # faster-whisper pads its own windows
        frames = min(int(WINDOW_S * _FRAMES_PER_S), 2 * math.ceil(window_s * _FRAMES_PER_S / 2))
        features = features[:, :frames]
        features = np.pad(features, ((0, 0), (0, frames - features.shape[1])))
        encoded = self.model.encode(features)
        # Speech runs ~3 words/s, ~4 tokens/s: a cap well above that bounds a runaway loop.
        prompt = self._prompt_ts if timestamps else self._prompt
        max_length = len(prompt) + 8 + int(audio_s * 8)
        result = self.model.model.generate(
            encoded,
            [prompt],
            beam_size=self.opts.beam_size,
            max_length=min(max_length, 448),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
            repetition_penalty=self.opts.repetition_penalty,
        )[0]
        tokens = result.sequences_ids[0]
        phrases = self._phrases(tokens) if timestamps else []
        text = " ".join(t for _, t in phrases) if timestamps else self._tokenizer.decode(tokens).strip()
        # CTranslate2's score is the log-prob summed over tokens and divided by their number
        avg_logprob = result.scores[0] if tokens else 0.0
        return Decoded(
            text=text,
            audio_s=audio_s,
            decode_ms=0.0,
            no_speech_prob=result.no_speech_prob,
            avg_logprob=avg_logprob,
            compression_ratio=compression_ratio(text),
            phrases=phrases,
        )

    def _phrases(self, tokens: list[int]) -> list[tuple[float, str]]:
        """Text between timestamp tokens, each with the timestamp that closes it."""
        first_ts = self._tokenizer.timestamp_begin
        phrases: list[tuple[float, str]] = []
        words: list[int] = []
        for token in tokens + [first_ts + int(WINDOW_S * 50)]:  # close a trailing open phrase
            if token < first_ts:
                words.append(token)
            elif words:
                text = self._tokenizer.decode(words).strip()
                if text:
                    phrases.append(((token - first_ts) * 0.02, text))
                words = []
        return phrases

    def _silence(self, no_speech_prob: float, avg_logprob: float) -> bool:
        return no_speech_prob > self.opts.no_speech_threshold and avg_logprob < self.opts.log_prob_threshold
