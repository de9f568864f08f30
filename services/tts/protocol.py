"""Wire protocol of services/tts, version 1.

POST /v1/synthesize  {"text": str, "voice": str | null, "speed": float | null, "continues": bool,
                      "keep": bool}
  The text may be markdown with numbers, emoji, URLs...: the service makes it speakable first;
  control characters (NUL, ESC...) are gaps between words, zero-width ones nothing.
  `continues`: a later chunk of a reply already playing, served after other replies' first chunks.
  A reply (not `continues`) whose first piece is one of the profile's `tts.openers` ("Sure,"), in
  its default voice and speed, has that piece's audio from memory, made at the service's start.
  `keep`: a phrase said again and again (an agent's prerendered fallbacks): its audio is kept, and
  the same text, voice and speed later comes from memory, at once and with no synthesis. The
  profile's fallback phrases (`Settings.fallback_phrases`, its voice and speed) are kept from the
  service's start.
  200 -> chunked body of raw PCM, signed 16-bit little-endian, mono, at X-Sample-Rate Hz;
         audio is written as it is synthesised (a piece at a time; a reply's first piece, on
         the onnx backend, a decoder window at a time), so the first bytes arrive before the
         whole text is done. Closing the connection stops the synthesis.
  204 -> nothing in the text is speakable (whitespace, emoji, control characters only): no audio,
         not an error.
  4xx -> {"error": str}   400: not this JSON, empty text, unknown voice (the error lists the
         voices), speed outside MIN_SPEED..MAX_SPEED; 413: text over `tts.max_text_chars`
         (aiohttp's own plain-text 413 for a body over 64 KiB)
GET /v1/voices -> {"voices": [str], "default": str}
GET /health    -> {"status": "ok", "backend": str, "waiting": int, "running": int,
                   "pieces": {"synthesized": int, "stopped": int, "dropped": int},
                   "openers": {"kept": int, "remembered": int}}
  pieces: since start, pieces synthesised, stopped part-way and never started because the caller
  hung up; waiting: pieces queued now; running: pieces being synthesised now; openers: the openers
  kept, and the replies whose first piece came from them (no synthesis).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

SAMPLE_RATE = 24000
SYNTHESIZE_PATH = "/v1/synthesize"
VOICES_PATH = "/v1/voices"
HEALTH_PATH = "/health"
SAMPLE_RATE_HEADER = "X-Sample-Rate"
MIN_SPEED, MAX_SPEED = 0.5, 2.0  # what Kokoro accepts (kokoro-onnx refuses the rest)


class SynthesizeRequest(BaseModel):
    text: str = Field(min_length=1)
    voice: str | None = None
    speed: float | None = Field(default=None, ge=MIN_SPEED, le=MAX_SPEED)
    # A later chunk of a reply that is already playing: it waits behind the first chunks of
    # other replies (a caller waits longest for a reply's first audio).
    continues: bool = False
    # The same phrase comes again in every call (a fallback made at each call's start): keep its
    # audio and answer it from memory, so calls starting together do not each make it on the
    # cores their first replies need.
    keep: bool = False
