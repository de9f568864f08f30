"""One call's AgentSession, built from settings: Silero VAD -> STT -> LLM -> TTS, traced per turn.

The same builder serves a LiveKit room (`worker.py`) and the simulated caller (`demo.py`); only the
audio input/output differ.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import aclosing
from typing import Any

from livekit import rtc
from livekit.agents import (
    Agent,
    AgentSession,
    APIConnectOptions,
    APIError,
    ModelSettings,
    llm,
    utils,
)
from livekit.agents.stt import STT
from livekit.agents.tts import TTS
from livekit.agents.vad import VAD
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.agents.voice.events import UserStateChangedEvent
from livekit.plugins import openai

from configs import Settings
from services.asr.client import AsrClient
from services.llm import FIRST_SENTENCE
from services.llm.health import LlmHealth
from services.llm.hold import CALLER_HEADER, LlmHold
from services.tts.client import TtsClient
from services.tts.text.markup_stream import strip_markup

from .conversation import HistoryWindow, history_budget, token_counter
from .fallback import PrerenderedPhrase
from .plugins import HalfsecSTT, HalfsecTTS, ReplyStreamAdapter
from .plugins.chunking import FirstClauseTokenizer
from .plugins.silero_vad import SileroVAD
from .reply import ReplyLimit
from .tools import agent_tools
from .tracing import CallTracer

log = logging.getLogger("halfsec.agent")
_PROBE_S = 0.4  # how long the LLM server gets to say it is healthy when a first token is late


class HalfsecAgent(Agent):
    """The assistant. Wraps the default LLM node to send a history trimmed to the context budget
    (`conversation.py`), to timestamp its first token and sentence, and to speak a short fallback
    when the LLM fails, so the caller is never left in silence. The transcript is the speakable
    text, the same the TTS is given."""

    def __init__(
        self,
        settings: Settings,
        tracer: CallTracer,
        clients: list[STT | TTS],
        fallback_audio: PrerenderedPhrase | None = None,
        prerender: tuple[PrerenderedPhrase, ...] = (),
        speaker: HalfsecTTS | None = None,
        tts_fallback: PrerenderedPhrase | None = None,
        llm_health: LlmHealth | None = None,
    ) -> None:
        # the same text (and tools) every turn of the call: vLLM's prefix cache starts with it
        super().__init__(instructions=settings.llm.system_prompt, tools=agent_tools(settings))
        self._tracer = tracer
        self._clients = clients
        self._fallback = settings.llm.fallback_text
        self._first_token_timeout_s = settings.llm.first_token_timeout_s
        self._llm_health = llm_health  # None: a late first token is a failed reply, whatever the server says
        self._max_sentences = settings.llm.max_sentences
        self._fallback_audio = fallback_audio
        self._speaker = speaker  # the session's TTS plugin: it says when the TTS is down
        # the TTS's apology replaced this reply: its LLM milestones are not on the caller's path
        self._unspoken = False
        # made at call start, with the LLM's: the ASR fallback, which the session says itself
        self._tts_fallback = tts_fallback  # what `speaker` plays while the TTS is down
        self._phrases = [p for p in (fallback_audio, *prerender, tts_fallback) if p is not None]
        self._greeting = settings.agent.greeting
        count, how = token_counter(settings)
        self._history = HistoryWindow(history_budget(settings), count)
        log.debug("history budget %d tokens, counted by %s", self._history.budget_tokens, how)

    async def on_enter(self) -> None:
        # the call's own fallbacks first: the TTS's, kept by the process, is needed only later
        own = [p for p in self._phrases if p is not self._tts_fallback]
        for phrase in own:
            phrase.start()
        if self._tts_fallback is not None:
            self._tts_fallback.start(after=own)
        if self._greeting:
            # the agent speaks first; it is in the chat history, but no user turn's reply
            self._tracer.unprompted(self.session.say(self._greeting).id)

    async def aclose_clients(self) -> None:
        """Close the plugins' HTTP sessions (AgentSession.aclose leaves its plugins open)."""
        for phrase in self._phrases:
            await phrase.aclose()
        for client in self._clients:
            await client.aclose()
        if self._llm_health is not None:
            await self._llm_health.aclose()

    async def llm_node(
        self, chat_ctx: llm.ChatContext, tools: list[llm.Tool], model_settings: ModelSettings
    ) -> AsyncIterable[llm.ChatChunk | str]:
        self._tracer.mark("llm_request")
        self._unspoken = False
        chat_ctx = self._history.trim(chat_ctx)
        text: str | None = ""  # None once the first sentence is complete
        spoke = False
        # LiveKit's OpenAI plugin hands on a tool call only once it is complete, seconds in on a
        # slow model: with tools offered, only `llm.timeout_s` applies.
        first_token_s = None if tools else self._first_token_timeout_s
        heard = ReplyLimit(self._max_sentences)
        watch: asyncio.Task[None] | None = None
        try:
            async with (
                asyncio.timeout(first_token_s) as deadline,
                aclosing(Agent.default.llm_node(self, chat_ctx, tools, model_settings)) as reply,
            ):
                if first_token_s is not None and self._llm_health is not None:
                    watch = asyncio.create_task(self._watch_first_token(deadline, first_token_s, self._llm_health))
                async for chunk in reply:
                    if watch is not None:
                        watch.cancel()
                    deadline.reschedule(None)  # it answers: the rest has `llm.timeout_s`
                    delta = chunk if isinstance(chunk, str) else (chunk.delta and chunk.delta.content)
                    if delta and text is not None:
                        if not self._unspoken:
                            self._tracer.mark("llm_first_token")
                        text += delta
                        if FIRST_SENTENCE.search(text):
                            if not self._unspoken:
                                self._tracer.mark("llm_first_sentence")
                            text = None
                    spoke = spoke or bool(delta)
                    if not delta or (not isinstance(chunk, str) and chunk.delta and chunk.delta.tool_calls):
                        yield chunk  # no words (a tool call, usage): as it came
                    elif said := heard.feed(delta):
                        yield said
                    if heard.done:
                        break  # closing the stream ends the request at vLLM
            if said := heard.flush():
                yield said
            if text and text.strip() and not self._unspoken:  # shorter than FIRST_SENTENCE's shortest
                self._tracer.mark("llm_first_sentence")
        except (APIError, TimeoutError) as exc:
            reason = exc if isinstance(exc, APIError) else f"no first token in {first_token_s} s"
            log.warning("LLM failed (%s): speaking the fallback", reason)
            self._tracer.mark("fallback")
            if not spoke:  # a reply cut off mid-way just ends; a missing one gets an apology
                yield self._fallback
        finally:
            if watch is not None:
                await utils.aio.cancel_and_wait(watch)

    @staticmethod
    async def _watch_first_token(deadline: asyncio.Timeout, limit_s: float, health: LlmHealth) -> None:
        """A hung vLLM takes the request and sends nothing; a busy one (two cores shared with
        Whisper and Kokoro) is only late. So with no token `_PROBE_S` before `limit_s`, ask its
        /health: healthy, the reply takes its time (`llm.timeout_s` still ends it); no answer by
        then, the deadline stands and the caller hears the fallback."""
        await asyncio.sleep(max(limit_s - _PROBE_S, 0.0))
        if await health.healthy(min(_PROBE_S, limit_s)) and not deadline.expired():
            log.info("no first token %.1f s into the reply, the LLM server healthy: waiting on", limit_s - _PROBE_S)
            deadline.reschedule(None)

    async def tts_node(self, text: AsyncIterable[str], model_settings: ModelSettings) -> AsyncIterator[rtc.AudioFrame]:
        """The LLM fallback from its prerendered audio (fallback.py); anything else to the TTS.
        Only text that could still be the fallback is held back: a reply's first characters.
        A TTS that is down or hung gets neither: the plugin's prerendered apology plays at once."""
        if self._speaker is not None and (apology := await self._speaker.fallback_if_down()) is not None:
            self._unspoken = True
            self._tracer.mark("tts_request")  # the apology's audio, from memory
            self._tracer.mark("tts_first_audio")
            for frame in apology:
                yield frame
            async for _ in text:  # the reply is not spoken (its transcript still is the reply)
                pass
            return
        frames = self._fallback_audio.frames if self._fallback_audio is not None else None
        chunks = aiter(text)
        seen = ""
        if frames is not None:
            async for chunk in chunks:
                seen += chunk
                if not self._fallback.startswith(seen.strip()):
                    break
            else:  # the text ended: the fallback, whole?
                if seen.strip() == self._fallback:
                    self._tracer.mark("tts_request")
                    self._tracer.mark("tts_first_audio")
                    for frame in frames:
                        yield frame
                    return

        async def replay() -> AsyncIterator[str]:
            if seen:
                yield seen
            async for chunk in chunks:
                yield chunk

        async for frame in Agent.default.tts_node(self, replay(), model_settings):
            yield frame

    def transcription_node(self, text: AsyncIterable[str], model_settings: ModelSettings) -> AsyncIterable[str]:
        # what was spoken (the session filters the TTS's text the same way): the history, the
        # room's transcript and the turn record then hold no markdown for the model to copy
        return Agent.default.transcription_node(self, strip_markup(text), model_settings)


def build_vad(settings: Settings) -> VAD:
    """The session's Silero VAD: where the caller's speech starts and (with turn.detection
    "vad") where their turn ends. One per process and configuration, as LiveKit's prewarm
    does: each call's stream keeps its own state over the shared ONNX session. (One loaded per
    call: the agent process's RSS grew 10 % over the second minute of a 2-minute soak; shared,
    7 %; one run each.)"""
    o = settings.vad
    return _silero_vad(
        o.min_silence_s, o.min_speech_s, o.prefix_padding_s, o.activation_threshold, o.forget_after_quiet_s
    )


@functools.cache
def _silero_vad(
    min_silence_s: float, min_speech_s: float, prefix_padding_s: float, threshold: float, forget_s: float | None
) -> VAD:
    return SileroVAD.load(
        min_silence_duration=min_silence_s,
        min_speech_duration=min_speech_s,
        prefix_padding_duration=prefix_padding_s,
        activation_threshold=threshold,
        forget_after_quiet_s=forget_s,
    )


def build_llm(settings: Settings, caller: str | None = None, **options: Any) -> openai.LLM:
    """The session's LLM: LiveKit's OpenAI plugin streaming from services/llm (vLLM). `caller`:
    the name its requests carry for the LLM hold (`llm_hold`). `options` go to the plugin as they
    are (a test's `extra_body={"ignore_eos": True}`)."""
    if caller is not None:
        options["extra_headers"] = {CALLER_HEADER: caller} | options.get("extra_headers", {})
    return openai.LLM(
        model=settings.llm.served_model_name,
        base_url=settings.llm.client_base_url,
        # vLLM checks it when HALFSEC_SERVICE_TOKEN is set; without, the openai client still wants one
        api_key=settings.token() or "halfsec-local",
        temperature=settings.llm.temperature,
        max_completion_tokens=settings.llm.max_tokens,
        **{**options, "extra_body": settings.llm.sampling() | options.get("extra_body", {})},
    )


def llm_hold(settings: Settings, caller: str | None = None) -> LlmHold | None:
    """The hold on the vLLM of this box until a reply's first audio is made (None: not
    asked for, or the LLM runs elsewhere, on cores Kokoro does not share). `caller`: the name
    the session's LLM requests carry (`build_llm`)."""
    lease_s = settings.llm.hold_for_first_audio_s
    if lease_s is None or settings.llm.elsewhere:
        return None
    return LlmHold(settings.llm.client_base_url, lease_s=lease_s, caller=caller, token=settings.token())


def new_caller() -> str:
    """A call's name on its LLM requests and holds: unique among the calls one vLLM serves."""
    return uuid.uuid4().hex


def llm_conn_options(settings: Settings) -> APIConnectOptions:
    # no retries: each costs seconds of silence; a failure is answered with the fallback instead
    return APIConnectOptions(max_retry=0, timeout=settings.llm.timeout_s)


def build_session(
    settings: Settings,
    tracer: CallTracer,
    *,
    vad: VAD | None = None,
    asr: AsrClient | None = None,
    tts_client: TtsClient | None = None,
    model: llm.LLM | None = None,
    caller: str | None = None,
) -> tuple[AgentSession, HalfsecAgent]:
    """The call's session and agent; `tracer` follows the session (attached before any other
    handler, so a turn's end is marked before anything reacts to it). The VAD, the services'
    clients and the LLM come from settings unless given (a test's fakes). `caller`: the name
    a given `model` was built with (`build_llm`); its requests and the LLM hold share it."""
    caller = caller or new_caller()
    vad = vad or build_vad(settings)
    stt = HalfsecSTT(
        asr or AsrClient(settings.asr.client_url, token=settings.token()),
        language=settings.asr.language or "en",
        on_mark=tracer.mark,
        on_transcript=tracer.transcript,
        # the ASR service's endpoint is the end of the turn only when it decides turns
        marks_end_of_turn=settings.turn.detection == "stt",
        unfinished_wait_s=settings.turn.unfinished_wait_s if settings.turn.detection == "vad" else None,
        survive_outages=True,  # while services/asr is away, each turn gets the fallback below
        streaming=settings.asr.streaming,
    )
    model = model or build_llm(settings, caller)
    kokoro_client = tts_client or TtsClient(settings.tts.client_url, token=settings.token())

    def phrase(text: str, keep: bool = False) -> PrerenderedPhrase:
        # the service keeps the phrase's audio: every call makes it, only the first synthesises it
        speaker = HalfsecTTS(kokoro_client, voice=settings.tts.voice, speed=settings.tts.speed, keep=True)
        return PrerenderedPhrase(text, speaker, keep=keep)

    # what the caller hears while the TTS itself is failing: made while it is up, kept by the process
    tts_fallback = phrase(settings.tts.fallback_text, keep=True)
    kokoro = HalfsecTTS(
        kokoro_client,
        voice=settings.tts.voice,
        speed=settings.tts.speed,
        on_mark=tracer.mark,
        fallback=lambda: tts_fallback.frames,
        first_audio_timeout_s=settings.tts.first_audio_timeout_s,
        hold=llm_hold(settings, caller),
    )
    # Our own adapter, not the session's default one, so the first chunk is a clause (and
    # services/tts knows which chunk opens a reply).
    chunker = FirstClauseTokenizer(
        min_clause_words=settings.tts.first_clause_words, phrase_from_words=settings.tts.first_phrase_words
    )
    tts = ReplyStreamAdapter(tts=kokoro, sentence_tokenizer=chunker)
    turn = settings.turn
    session: AgentSession = AgentSession(
        vad=vad,
        stt=stt,
        llm=model,
        tts=tts,
        turn_handling={
            "turn_detection": turn.detection,
            "endpointing": {
                "min_delay": turn.endpointing_min_delay_s,
                "max_delay": turn.endpointing_max_delay_s,
            },
            "interruption": {
                "enabled": turn.allow_interruptions,
                "min_duration": turn.interruption_min_s,
                "resume_false_interruption": turn.resume_false_interruption,
                "false_interruption_timeout": turn.false_interruption_timeout_s,
            },
            "preemptive_generation": {"enabled": turn.preemptive_generation, "preemptive_tts": turn.preemptive_tts},
        },
        aec_warmup_duration=turn.aec_warmup_s or None,
        # LiveKit's markdown and emoji filters, plus list markers (services/tts/text/markup_stream.py)
        tts_text_transforms=[strip_markup],
        user_away_timeout=None,
        conn_options=SessionConnectOptions(llm_conn_options=llm_conn_options(settings)),
    )
    tracer.attach(session)

    asr_fallback = phrase(settings.asr.fallback_text)

    def ask_again() -> None:
        audio = asr_fallback.replay()
        if audio is None:  # not rendered (yet): the TTS says it
            session.say(settings.asr.fallback_text)
        else:
            session.say(settings.asr.fallback_text, audio=audio)

    def asr_failed(exc: Exception) -> None:
        log.warning("ASR failed (%s): speaking the fallback", exc)
        tracer.mark("fallback")
        ask_again()

    def unheard() -> None:
        if session.agent_state == "speaking":
            return  # a sound over the agent's reply (the false-interruption timer handles it)
        if session.user_state == "speaking":
            # The service gives up on a wordless sound only after decoding it whole once more;
            # by then the caller may be saying their words (a noise, a pause, then speech), and
            # those are the turn: asking them to repeat would talk over them.
            log.info("speech without words, but the caller is talking again: no request to repeat")
            return
        log.info("speech without words: asking the caller to repeat")
        tracer.mark("unheard")
        ask_again()

    stt.on_failure, stt.on_unheard = asr_failed, unheard

    @session.on("user_state_changed")
    def _answer_turns_during_an_outage(ev: UserStateChangedEvent) -> None:
        # registered after the tracer's handler: the turn has ended when the fallback starts
        if ev.new_state == "speaking":
            stt.user_started()
        elif ev.old_state == "speaking":
            # the turn's words go to LiveKit as one final; a hung service gives none: the
            # plugin finds out, asr_failed answers
            stt.user_stopped()
            if stt.outage is not None:
                asr_failed(stt.outage)

    agent = HalfsecAgent(
        settings,
        tracer,
        [stt, kokoro],
        phrase(settings.llm.fallback_text),
        prerender=(asr_fallback,),
        speaker=kokoro,
        tts_fallback=tts_fallback,
        llm_health=LlmHealth(settings.llm.server_url, token=settings.token()),
    )
    return session, agent
