"""LiveKit STT/TTS plugins that are thin clients of services/asr and services/tts.

The LLM needs no plugin of ours: `livekit.plugins.openai.LLM` talks to vLLM's OpenAI server.
"""

from .asr_stt import HalfsecSTT
from .kokoro_tts import HalfsecTTS, ReplyStreamAdapter

__all__ = ["HalfsecSTT", "HalfsecTTS", "ReplyStreamAdapter"]
