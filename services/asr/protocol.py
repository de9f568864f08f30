"""Wire protocol of services/asr, version 1.

POST /v1/transcribe?sample_rate=16000   body: raw PCM, signed 16-bit little-endian, mono
  200 -> {"text": str, "language": str, "audio_s": float, "decode_ms": float}
  4xx/5xx -> {"error": str}
GET /health -> {"status": "ok", "model": str}
"""

from __future__ import annotations

from pydantic import BaseModel

SAMPLE_RATE = 16000
TRANSCRIBE_PATH = "/v1/transcribe"
HEALTH_PATH = "/health"


class Transcript(BaseModel):
    text: str
    language: str = "en"
    audio_s: float = 0.0
    decode_ms: float = 0.0
