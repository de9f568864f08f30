"""Scripted stand-ins for the parts of a call, so LiveKit's own AgentSession runs a whole call
deterministically, in the spirit of livekit/agents' fake_vad/fake_stt/fake_llm/fake_tts:

- the caller "speaks" in tone bursts (`Speech`): nonzero samples are voice, zeros silence;
- `ScriptedVAD` hears exactly that (speech after 50 ms of it, silence after 200 ms);
- `ScriptedAsr` stands in for services/asr's client: a preflight at each pause inside an
  utterance and a final at its end, with the texts the script gives;
- `ScriptedLLM` answers each user text with the script's reply (or a tool call, or an error);
- `ScriptedTts` stands in for services/tts's client: a tone per character.

The plugins, the agent's nodes, the tracer and the caller's ear are the real ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectionError, APIConnectOptions, llm, utils, vad
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

from agent.sim.caller import ROOM_RATE, Utterance
from agent.sim.voice import Voice
from services.asr.protocol import SAMPLE_RATE as ASR_RATE
from services.asr.protocol import EndOfSpeech, Final, Preflight, SpeechStarted, Transcript

TONE_HZ = 220


def _voiced(pcm16: bytes) -> bool:
    # a resampler's tail rings a little past the tone: well under this
    return bool(np.any(np.abs(np.frombuffer(pcm16, np.int16).astype(np.int32)) > 64))


def tone(seconds: float, rate: int = ROOM_RATE, amplitude: int = 4000) -> np.ndarray:
    n = int(seconds * rate)
    return (amplitude * np.sin(np.arange(n) * 2 * np.pi * TONE_HZ / rate)).astype(np.int16)


def speech(*parts: float, name: str = "scripted") -> Utterance:
    """An utterance from durations: voice, pause, voice, ... (seconds)."""
    pcm = np.concatenate(
        [tone(s) if i % 2 == 0 else np.zeros(int(s * ROOM_RATE), np.int16) for i, s in enumerate(parts)]
    )
    return Utterance(Path(name), pcm, Voice(first=0, end=len(pcm), rate=ROOM_RATE), on_stream_grid=False)


# ---------------------------------------------------------------- VAD


class ScriptedVAD(vad.VAD):
    def __init__(self, min_speech_s: float = 0.05, min_silence_s: float = 0.2) -> None:
        super().__init__(capabilities=vad.VADCapabilities(update_interval=0.02))
        self.min_speech_s, self.min_silence_s = min_speech_s, min_silence_s

    def stream(self) -> vad.VADStream:
        return _ScriptedVADStream(self)


class _ScriptedVADStream(vad.VADStream):
    _vad: ScriptedVAD

    async def _main_task(self) -> None:
        speaking, speech_s, silence_s, samples = False, 0.0, 0.0, 0
        frames: list[rtc.AudioFrame] = []
        async for item in self._input_ch:
            if not isinstance(item, rtc.AudioFrame):
                speaking, speech_s, silence_s, frames = False, 0.0, 0.0, []  # flush: a new segment
                continue
            voiced = _voiced(item.data)
            samples += item.samples_per_channel
            speech_s, silence_s = (speech_s + item.duration, 0.0) if voiced else (speech_s, silence_s + item.duration)
            if speaking or voiced:
                frames.append(item)

            now = {
                "samples_index": samples,
                "timestamp": 0.0,
                "speech_duration": speech_s,
                "silence_duration": silence_s,
            }
            self._event_ch.send_nowait(
                vad.VADEvent(
                    type=vad.VADEventType.INFERENCE_DONE,
                    frames=[item],
                    speaking=speaking,
                    probability=float(voiced),
                    **now,
                )
            )
            if not speaking and voiced and speech_s >= self._vad.min_speech_s:
                speaking = True
                start = vad.VADEvent(type=vad.VADEventType.START_OF_SPEECH, frames=list(frames), speaking=True, **now)
                self._event_ch.send_nowait(start)
            elif speaking and silence_s >= self._vad.min_silence_s:
                speaking = False
                end = vad.VADEvent(type=vad.VADEventType.END_OF_SPEECH, frames=frames, speaking=False, **now)
                self._event_ch.send_nowait(end)
                speech_s, frames = 0.0, []
            elif not speaking and not voiced:
                speech_s, frames = 0.0, []


# ---------------------------------------------------------------- ASR (services/asr's client)


UNHEARD = "<unheard>"  # a final with no words that the service marks `unheard`


class ScriptedAsr:
    """`texts[u]`: utterance u's transcripts, one per pause of its voice (a preflight each, the
    last one also the final). An empty text is a turn Whisper heard nothing in; `UNHEARD`, one
    the service marks as speech without words (it asks the agent to have the caller repeat)."""

    def __init__(
        self,
        texts: list[list[str]],
        preflight_after_s: float = 0.032,
        endpoint_s: float = 0.2,
        unheard_after_s: float = 0.0,
        final_after_s: float = 0.0,
    ) -> None:
        self.texts = texts
        self.preflight_after_s, self.endpoint_s = preflight_after_s, endpoint_s
        # an UNHEARD final comes this long after the endpoint (the service decodes the whole
        # utterance once more before it gives up); any other, `final_after_s` (a slow decode)
        self.unheard_after_s, self.final_after_s = unheard_after_s, final_after_s
        self.utterance = 0

    async def stream(self) -> _ScriptedAsrStream:
        return _ScriptedAsrStream(self)

    async def answers(self, timeout_s: float) -> bool:
        return True  # never hung (the plugin asks when a turn's final is missing)

    async def transcribe(self, pcm16: bytes) -> Transcript:
        """The one-shot path (`asr.streaming: false`): the utterance's last text."""
        texts = self.texts[min(self.utterance, len(self.texts) - 1)]
        self.utterance += 1
        return Transcript(text=texts[-1], audio_s=len(pcm16) / 2 / ASR_RATE)

    async def aclose(self) -> None:
        pass


class _ScriptedAsrStream:
    def __init__(self, owner: ScriptedAsr) -> None:
        self._owner = owner
        self._events: asyncio.Queue[object | None] = asyncio.Queue()
        self._voiced, self._silence_s, self._pause = False, 0.0, 0

    async def send(self, pcm16: bytes) -> None:
        o = self._owner
        voiced = _voiced(pcm16)
        if voiced and not self._voiced:
            if self._pause == 0:
                self._events.put_nowait(SpeechStarted(stream_s=0.0))
            self._voiced, self._silence_s = True, 0.0
            return
        if voiced:
            return
        self._silence_s += len(pcm16) / 2 / ASR_RATE
        texts = o.texts[min(o.utterance, len(o.texts) - 1)]
        if self._voiced and self._silence_s >= o.preflight_after_s:
            self._voiced = False
            text = texts[min(self._pause, len(texts) - 1)]
            self._pause += 1
            if text and text is not UNHEARD:
                self._events.put_nowait(Preflight(text=text))
        if self._pause and not self._voiced and self._silence_s >= o.endpoint_s:
            self._events.put_nowait(EndOfSpeech(stream_s=0.0, last_voiced_s=0.0))
            unheard = texts[-1] is UNHEARD
            text = "" if unheard else texts[-1]
            final = Final(text=text, audio_s=0.0, after_endpoint_ms=0.0, reused_preflight=True, unheard=unheard)
            if delay_s := (o.unheard_after_s if unheard else o.final_after_s):
                asyncio.get_running_loop().call_later(delay_s, self._events.put_nowait, final)
            else:
                self._events.put_nowait(final)
            o.utterance += 1
            self._pause = 0

    async def end(self) -> None:
        self._events.put_nowait(None)

    async def events(self) -> AsyncIterator[object]:
        while (event := await self._events.get()) is not None:
            yield event

    async def aclose(self) -> None:
        self._events.put_nowait(None)


# ---------------------------------------------------------------- LLM


@dataclass
class Reply:
    text: str = "Sure, that is fine."
    ttft_s: float = 0.05
    token_s: float = 0.01
    tool: str | None = None  # call this tool first, then answer with `text`
    fail: bool = False  # the request fails (connection error)


@dataclass
class ScriptedLLM(llm.LLM):
    replies: dict[str, Reply] = field(default_factory=dict)  # by the user's words
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        **_: object,
    ) -> llm.LLMStream:
        return _ScriptedLLMStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class _ScriptedLLMStream(llm.LLMStream):
    _llm: ScriptedLLM

    async def _run(self) -> None:
        items = self._chat_ctx.items
        user = next((i.text_content or "" for i in reversed(items) if getattr(i, "role", None) == "user"), "")
        answered_tool = any(getattr(i, "type", None) == "function_call_output" for i in items)
        self._llm.requests.append(user)
        reply = self._llm.replies.get(user, Reply())
        await asyncio.sleep(reply.ttft_s)
        if reply.fail:
            raise APIConnectionError("scripted LLM failure")
        chunk_id = utils.shortuuid()
        if reply.tool and not answered_tool:
            call = llm.FunctionToolCall(name=reply.tool, arguments="{}", call_id=utils.shortuuid())
            delta = llm.ChoiceDelta(role="assistant", tool_calls=[call])
            self._event_ch.send_nowait(llm.ChatChunk(id=chunk_id, delta=delta))
            return
        for word in reply.text.split(" "):
            delta = llm.ChoiceDelta(role="assistant", content=word + " ")
            self._event_ch.send_nowait(llm.ChatChunk(id=chunk_id, delta=delta))
            await asyncio.sleep(reply.token_s)


# ---------------------------------------------------------------- TTS (services/tts's client)


class ScriptedTts:
    """A tone per character (`s_per_char`), after `ttfb_s`, in 100 ms pieces."""

    def __init__(self, ttfb_s: float = 0.05, s_per_char: float = 0.05, rate: int = 24000) -> None:
        self.ttfb_s, self.s_per_char, self.rate = ttfb_s, s_per_char, rate
        self.requests: list[str] = []

    async def stream(self, text: str, **_: object) -> AsyncIterator[tuple[int, bytes]]:
        self.requests.append(text)
        await asyncio.sleep(self.ttfb_s)
        audio = tone(len(text.strip()) * self.s_per_char, self.rate)
        step = self.rate // 10
        for i in range(0, len(audio), step):
            yield self.rate, audio[i : i + step].tobytes()
            await asyncio.sleep(0)

    async def health(self) -> dict[str, object]:
        return {"status": "ok"}

    async def answers(self, timeout_s: float) -> bool:
        return True  # never down (the agent asks as each reply starts)

    async def aclose(self) -> None:
        pass
