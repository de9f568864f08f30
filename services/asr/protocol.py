"""Wire protocol of services/asr, version 2.

Streaming, one WebSocket per call (the agent's STT plugin, the bench):
  GET /v1/stream?sample_rate=16000&channels=1&encoding=pcm_s16le   (anything else: see bad input)
  client -> server  binary: raw PCM, signed 16-bit little-endian mono, at most `asr.max_frame_s`
                    text:   {"type": "end"}  no more audio: finish the utterance, report, close
  server -> client  text: one JSON event per message, `StreamEvent` below: `ready` once, then per
                    turn speech_start, interim*, preflight*, end_of_speech, final (a preflight at
                    each pause; the last one is reused as the final when no speech came after
                    it); `closed` answers the client's `end`
  Bad input, each answered on this stream alone (other streams go on):
    - a binary frame is PCM by contract and is never sniffed for a file header: a file sent
      anyway is read as samples (a WAV's header is 22 samples of noise, MP3 is all noise). An
      empty or odd-length frame (half a sample) gets an `error` (fatal: false) and is dropped.
    - a frame over `asr.max_frame_s`: a fatal `error`, then close 1009.
    - a text message other than `end`: an `error` (fatal: false); the stream goes on.
    - a query other than the one above (a wrong sample_rate...): a fatal `error`, close 1008.
    - no message at all for `asr.idle_timeout_s`: a fatal `error` with reason "idle", close
      1008. Not a failure: a client whose audio stopped (a muted caller) opens a new stream
      when it has audio again.
    - more than `asr.max_streams` streams: a fatal `error`, close 1013.

Offline, one request per utterance:
  POST /v1/transcribe?sample_rate=16000   body: PCM as above, never sniffed (a file's bytes are noise)
    200 -> Transcript    4xx/5xx -> {"error": str}
    400: empty or odd-length body, another sample_rate, audio over `asr.max_audio_s`; 413 (aiohttp's
    own, plain text): a body past that limit by more than 1 KiB; 503: too many decodes queued
GET /health -> {"status": "ok", "model": str, "streams": int, "queued": int, "tasks": int}
  streams: open now; queued: decodes waiting; tasks: the process's asyncio tasks (a leak shows)
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

SAMPLE_RATE = 16000
TRANSCRIBE_PATH = "/v1/transcribe"
STREAM_PATH = "/v1/stream"
HEALTH_PATH = "/health"
STREAM_PARAMS = {"sample_rate": str(SAMPLE_RATE), "channels": "1", "encoding": "pcm_s16le"}


class Transcript(BaseModel):
    text: str
    language: str = "en"
    audio_s: float = 0.0
    decode_ms: float = 0.0


class Ready(BaseModel):
    type: Literal["ready"] = "ready"
    model: str


class SpeechStarted(BaseModel):
    type: Literal["speech_start"] = "speech_start"
    stream_s: float  # stream time (seconds of audio received) where the utterance starts


class Interim(BaseModel):
    type: Literal["interim"] = "interim"
    text: str


class Preflight(BaseModel):
    """Decoded in the early silence; becomes the final unless the caller speaks again."""

    type: Literal["preflight"] = "preflight"
    text: str


class EndOfSpeech(BaseModel):
    type: Literal["end_of_speech"] = "end_of_speech"
    stream_s: float  # where the endpoint was detected
    last_voiced_s: float  # end of the last voiced audio
    forced: bool = False  # max utterance length, or the stream ended mid-speech


class Final(BaseModel):
    type: Literal["final"] = "final"
    text: str
    audio_s: float
    after_endpoint_ms: float  # endpoint detected -> this transcript ready, at the service
    reused_preflight: bool
    # Speech was heard but no words came of it, even decoded whole: ask the caller to repeat.
    unheard: bool = False


class Error(BaseModel):
    type: Literal["error"] = "error"
    message: str
    fatal: bool = False
    reason: Literal["idle"] | None = None  # "idle": closed after `asr.idle_timeout_s` of nothing


class Closed(BaseModel):
    """Answer to the client's `end`: what this stream cost."""

    type: Literal["closed"] = "closed"
    received_s: float  # audio received
    decoded_s: float  # audio decoded (pieces overlap: interims, then the final)
    compute_s: float  # time spent decoding


StreamEvent = Annotated[
    Ready | SpeechStarted | Interim | Preflight | EndOfSpeech | Final | Error | Closed,
    Field(discriminator="type"),
]
STREAM_EVENT: TypeAdapter[StreamEvent] = TypeAdapter(StreamEvent)
