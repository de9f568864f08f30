"""Wire protocol of services/tts, version 1.

POST /v1/synthesize  {"text": str, "voice": str | null, "speed": float | null}
  200 -> chunked body of raw PCM, signed 16-bit little-endian, mono, at X-Sample-Rate Hz;
         audio is written as each piece of the text is synthesised, so the first bytes arrive
         before the whole text is done.
  4xx -> {"error": str}   (unknown voice: the error lists the voices)
GET /v1/voices -> {"voices": [str], "default": str}
GET /health    -> {"status": "ok", "backend": str}
"""

from __future__ import annotations

from pydantic import BaseModel, Field

SAMPLE_RATE = 24000
SYNTHESIZE_PATH = "/v1/synthesize"
VOICES_PATH = "/v1/voices"
HEALTH_PATH = "/health"
SAMPLE_RATE_HEADER = "X-Sample-Rate"


class SynthesizeRequest(BaseModel):
    text: str = Field(min_length=1)
    voice: str | None = None
    speed: float | None = Field(default=None, gt=0.25, le=4.0)
