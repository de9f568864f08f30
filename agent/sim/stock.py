"""The stock LiveKit Agents pipeline around the same models, for `halfsec bench compare`.

What a LiveKit user gets from the framework's defaults with the same three services:
- Silero VAD as `silero.VAD.load()` loads it (its own silence and thresholds);
- a non-streaming faster-whisper STT (the ASR service's one-shot HTTP path: faster-whisper's own
  `transcribe` over the whole utterance), which the session wraps in LiveKit's VAD StreamAdapter;
- LiveKit's OpenAI plugin on vLLM with no options (no max tokens, the server's temperature);
- Kokoro through the session's default sentence adapter (blingfire sentences, one request each);
- `AgentSession`'s defaults otherwise: turn detection, endpointing delays, preemptive generation,
  interruptions. Its default turn detector asks LiveKit's cloud first and a local model second;
  neither can be reached here, so turns end on the endpointing delays (`stock_defaults`).

Only halfsec's tracer is attached, so both sides' turn records come from the same observer.
"""

from __future__ import annotations

import inspect

from livekit.agents import Agent, AgentSession
from livekit.agents.llm import LLM
from livekit.plugins import silero

from configs import Settings
from services.asr.client import AsrClient
from services.tts.client import TtsClient

from ..plugins import HalfsecSTT, HalfsecTTS
from ..tracing import CallTracer


class StockAgent(Agent):
    """An Agent with nothing overridden, plus closing the plugins' HTTP sessions after the call."""

    def __init__(self, instructions: str, clients: list[HalfsecSTT | HalfsecTTS]) -> None:
        super().__init__(instructions=instructions)
        self._clients = clients

    async def aclose_clients(self) -> None:
        for client in self._clients:
            await client.aclose()


def build_stock_session(settings: Settings, tracer: CallTracer, model: LLM) -> tuple[AgentSession, StockAgent]:
    token = settings.token()
    language = settings.asr.language or "en"
    stt = HalfsecSTT(AsrClient(settings.asr.client_url, token=token), language=language, streaming=False)
    tts = HalfsecTTS(
        TtsClient(settings.tts.client_url, token=token), voice=settings.tts.voice, speed=settings.tts.speed
    )
    session: AgentSession = AgentSession(vad=silero.VAD.load(), stt=stt, llm=model, tts=tts)
    tracer.attach(session)
    return session, StockAgent(settings.llm.system_prompt, [stt, tts])


def stock_defaults() -> dict[str, object]:
    """What the stock side runs with, as the framework reports its defaults (printed by the bench)."""
    opts = AgentSession().options
    detector = opts.turn_handling.get("turn_detection")
    return {
        "turn_detection": type(detector).__name__ if detector is not None else "vad",
        "endpointing": dict(opts.endpointing),
        "preemptive_generation": dict(opts.preemptive_generation),
        # the signature's default: no model load to read it
        "vad_min_silence_s": inspect.signature(silero.VAD.load).parameters["min_silence_duration"].default,
    }
