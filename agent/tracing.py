"""The one tracing observer of a call: every latency mark is taken here, and each belongs to the
user turn and the LiveKit speech that produced it.

Marks arrive from three kinds of places:
- the session's events (`attach`): the user started or stopped speaking, LiveKit created a
  speech (a reply, a preemptive generation, a `say`), conversation items, LiveKit's metrics;
- our plugins and nodes (`mark`, `transcript`): ASR transcripts, the LLM request and its first
  token and sentence, TTS requests and audio;
- an audio input/output that knows the ground truth (the simulated caller): the caller's first
  and last voiced samples, the agent's first audible sample, when its audio stopped.

A mark made inside one of LiveKit's speech tasks (the LLM and TTS nodes, audio forwarding) goes to
that speech: LiveKit keeps the current SpeechHandle in a context variable, which every task the
speech starts inherits. So a preemptive generation that LiveKit throws away keeps its own marks;
the turn's record takes the reply's marks from the speech that answered it (the one the caller
heard, else the one LiveKit scheduled) and only counts the others (`preemptive`).

A turn is written once its speeches are done and it was answered or the caller moved on to the
next turn, so an interrupted reply is recorded on its own turn, flagged. A speech the agent starts
on its own (the greeting, `unprompted`) answers no turn and has no record.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from livekit.agents import AgentSession, llm, tts
from livekit.agents.metrics import LLMMetrics, TTSMetrics
from livekit.agents.voice import SpeechHandle
from livekit.agents.voice.agent_activity import _SpeechHandleContextVar
from livekit.agents.voice.events import (
    AgentFalseInterruptionEvent,
    AgentStateChangedEvent,
    ConversationItemAddedEvent,
    SpeechCreatedEvent,
    UserStateChangedEvent,
)

from latency import Budget, TurnRecord, build_record
from latency.trace import SPEECH_MILESTONES, USER_MILESTONES, Preemptive

log = logging.getLogger("halfsec.tracing")

# LiveKit's speech of the running task. Private in livekit-agents, which is pinned (==1.8.9):
# a version that moves it fails this import at start, not silently in the records.
_CURRENT_SPEECH: ContextVar[SpeechHandle] = _SpeechHandleContextVar

Sink = Callable[[TurnRecord], None]
TranscriptKind = Literal["preflight_transcript", "final_transcript"]


@dataclass
class _Turn:
    marks: dict[str, float] = field(default_factory=dict)
    preflights: list[tuple[float, str]] = field(default_factory=list)
    finals: list[tuple[float, str]] = field(default_factory=list)
    user_text: str = ""
    user_metrics: dict[str, Any] = field(default_factory=dict)
    speeches: list[_Speech] = field(default_factory=list)
    false_interruptions: int = 0


@dataclass
class _Speech:
    id: str
    turn: _Turn
    marks: dict[str, float] = field(default_factory=dict)
    preemptive: bool = False  # created before the turn was confirmed, not scheduled at once
    scheduled: bool = False  # LiveKit queued it to be spoken (a discarded preemptive one never is)
    interrupted: bool = False
    done_at: float | None = None
    text: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)  # LiveKit's, as reported, by type


def _words(text: str) -> str:
    return " ".join(re.findall(r"[\w']+", text.lower()))


class CallTracer:
    """Marks of one call in, one `TurnRecord` per turn out to `sink`, in turn order.

    `end_of_turn_by` says who ends a turn (`turn.detection`): "vad", the session's VAD; "stt",
    the ASR service's endpointer (its plugin marks it). `ground_truth_io`: the audio input and
    output mark the caller's voice and the agent's first sound themselves; otherwise they are
    estimated from the session's events (a LiveKit room). `min_endpoint_ms`: the shortest
    endpoint the configured silence allows, checked on every record.
    """

    def __init__(
        self,
        session_id: str,
        sink: Sink,
        *,
        budget: Budget | None = None,
        end_of_turn_by: Literal["vad", "stt"] = "vad",
        vad_silence_s: float = 0.2,
        min_endpoint_ms: float | None = None,
        ground_truth_io: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session_id = session_id
        self._sink = sink
        self._budget = budget or Budget()
        self._end_of_turn_by = end_of_turn_by
        self._vad_silence_s = vad_silence_s
        self._min_endpoint_ms = min_endpoint_ms
        self._ground_truth_io = ground_truth_io
        self._clock = clock
        self._turns: list[_Turn] = []  # open turns, oldest first
        self._speeches: dict[str, _Speech] = {}
        self._playing: _Speech | None = None  # the speech whose audio the caller hears now
        # The turn holding the first voiced sample of the simulated caller's clip being said: it
        # is complete once the clip's last voiced sample has been fed and found its turn.
        self._clip_turn: _Turn | None = None
        self._written = 0

    def now(self) -> float:
        return self._clock()

    # -- marks -------------------------------------------------------------------------------

    def mark(self, name: str, at: float | None = None) -> None:
        """A milestone, now or at `at` (this tracer's clock). Reply milestones go to the speech
        of the running task (or the one playing); the user's to the current turn."""
        at = self.now() if at is None else at
        either = name in ("fallback", "unheard")  # the user's turn, or the reply's if one is running
        if name in SPEECH_MILESTONES or (either and _CURRENT_SPEECH.get(None) is not None):
            speech = self._speech_for(name)
            if name == "agent_stopped" and "first_frame_out" not in speech.marks:
                return  # nothing was heard, so nothing stopped
            speech.marks.setdefault(name, at)
            if name == "first_frame_out":
                self._playing = speech
        elif name in USER_MILESTONES or either:
            turn = self._user_turn(starts=self._starts_turn(name, at), clip=name == "first_voiced")
            turn.marks.setdefault(name, at)
            if name == "first_voiced" and self._ground_truth_io:
                self._clip_turn = turn
            elif name == "last_voiced":
                self._clip_turn = None
            if name in ("end_of_turn", "first_voiced", "last_voiced"):
                # a turn the ASR heard nothing in is complete now; so is one whose clip's end
                # waited to see whether the caller went on in the same clip (`_goes_on_in`), and
                # one whose clip has ended
                self._flush()
        else:
            raise ValueError(f"unknown milestone {name!r}")

    def transcript(self, kind: TranscriptKind, text: str, at: float | None = None) -> None:
        """A transcript from the ASR: each preflight is counted; the record times the one whose
        words the final kept."""
        at = self.now() if at is None else at
        turn = self._user_turn()
        (turn.preflights if kind == "preflight_transcript" else turn.finals).append((at, text))
        self._flush()

    # -- LiveKit's session -------------------------------------------------------------------

    def attach(self, session: AgentSession) -> None:
        """Follow `session`'s events (register before anything else reacts to them)."""
        session.on("user_state_changed", self._on_user_state)
        session.on("agent_state_changed", self._on_agent_state)
        session.on("speech_created", self._on_speech_created)
        session.on("conversation_item_added", self._on_item)
        session.on("agent_false_interruption", self._on_false_interruption)
        # LiveKit's per-request LLM and TTS metrics, from the models themselves: the session's
        # own `metrics_collected` is deprecated. They are emitted from the speech's own tasks, so
        # the current speech is the one they belong to.
        for model in (session.llm, session.tts):
            if isinstance(model, llm.LLM | tts.TTS):
                model.on("metrics_collected", self._on_metrics)

    def unprompted(self, speech_id: str) -> None:
        """`speech_id` is a speech the agent began on its own (the greeting): it answers no user
        turn, so no turn's record times it, not even the caller's first. Its marks are kept apart."""
        speech = self._speech(speech_id)
        turn = speech.turn
        if speech in turn.speeches:
            turn.speeches.remove(speech)
            if turn in self._turns and not turn.marks and not turn.speeches and not turn.finals:
                self._turns.remove(turn)  # opened only to hold it: the caller has not spoken
        speech.turn = _Turn()  # nobody's turn: never written

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if ev.new_state == "speaking":
            self.mark("speech_start")
        elif ev.old_state == "speaking":
            now = self.now()
            if not self._ground_truth_io:  # a room: the VAD's end of speech, less the silence it waited
                self.mark("last_voiced", now - self._vad_silence_s)
            if self._end_of_turn_by == "vad":
                self.mark("end_of_turn", now)

    def _on_agent_state(self, ev: AgentStateChangedEvent) -> None:
        if ev.new_state == "speaking" and not self._ground_truth_io:
            self.mark("first_frame_out")  # a room's output: its first frame, as LiveKit saw it

    def _on_speech_created(self, ev: SpeechCreatedEvent) -> None:
        handle = ev.speech_handle
        speech = self._speech(handle.id)

        def classify() -> None:
            # LiveKit schedules a reply within the call that created it; a preemptive generation
            # waits for the end of the turn, and is scheduled then or thrown away.
            speech.preemptive = not handle.scheduled and not handle.done()

        asyncio.get_running_loop().call_soon(classify)
        handle.add_done_callback(self._on_speech_done)

    def _on_speech_done(self, handle: SpeechHandle) -> None:
        speech = self._speech(handle.id)
        speech.done_at = self.now()
        speech.scheduled, speech.interrupted = handle.scheduled, handle.interrupted
        if self._playing is speech:
            self._playing = None
        self._flush()

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage):
            return
        current = _CURRENT_SPEECH.get(None)
        if item.role == "user":
            turn = self._speech(current.id).turn if current is not None else self._user_turn()
            turn.user_text = f"{turn.user_text} {item.text_content or ''}".strip()
            turn.user_metrics = dict(item.metrics or {})
        elif item.role == "assistant":
            speech = self._speech(current.id) if current is not None else self._latest_speech()
            speech.text = f"{speech.text} {item.text_content or ''}".strip()
            speech.metrics["assistant"] = dict(item.metrics or {})

    def _on_false_interruption(self, ev: AgentFalseInterruptionEvent) -> None:
        # The caller's sound was no turn: the paused reply plays on, so its audio did not stop.
        if (speech := self._playing) is not None:
            speech.turn.false_interruptions += 1
            if ev.resumed:
                speech.marks.pop("agent_stopped", None)

    def _on_metrics(self, ev: LLMMetrics | TTSMetrics) -> None:
        current = _CURRENT_SPEECH.get(None)
        speech = None if current is None else self._speeches.get(current.id)
        if speech is None:
            return  # a request made outside any speech
        metrics = ev.model_dump() | {"speech_id": current.id}  # LiveKit sets it after us
        kind = str(metrics.get("type", "metrics"))
        if kind in speech.metrics:  # e.g. one TTS metric per spoken chunk: keep them all
            previous = speech.metrics[kind]
            speech.metrics[kind] = [*(previous if isinstance(previous, list) else [previous]), metrics]
        else:
            speech.metrics[kind] = metrics

    # -- turns and speeches ------------------------------------------------------------------

    def _user_turn(self, *, starts: bool = False, clip: bool = False) -> _Turn:
        """The turn the user is in; `starts`: the user begins to speak, which opens a new turn
        once the last one has ended. Unless nothing came of that one (no final, no reply but a
        preemptive one) and this is no new clip of the simulated caller's (`clip`, its first
        voiced sample): the VAD ended it at a pause, the ASR kept listening, and the words that go
        on are the same turn's, which LiveKit answers as one. Apart, the first part was a turn without a reply
        and the reply was no clip's (a falsetto clip Silero hears in two parts, 2026-12-06)."""
        last = self._turns[-1] if self._turns else None
        if last is not None and starts and "end_of_turn" in last.marks:
            # (a preflight's reply thrown away unheard is no answer: held words' reply, turn_words.py)
            if clip or last.finals or any(s.scheduled or not s.preemptive for s in last.speeches):
                self._turns.append(_Turn())
                self._flush()  # the turn before may be complete now
            else:
                del last.marks["end_of_turn"]  # it goes on: its end is the next one
        if not self._turns:
            self._turns.append(_Turn())
        return self._turns[-1]

    def _starts_turn(self, name: str, at: float) -> bool:
        """Whether mark `name` at `at` is the caller speaking again. The caller's last voiced
        sample, fed after the turn it would close had already ended, is an utterance the VAD cut
        at a pause inside it going on: the words after the pause are the next turn's. The VAD's
        speech start for them can come after that sample when the words are short or the cores
        busy; on the ended turn, the interrupted reply to its first half read as the answer.
        (If no speech start comes, `_flush` gives it back: `_tail_unheard`.)"""
        if name in ("speech_start", "first_voiced"):
            return True
        ended = self._turns[-1].marks.get("end_of_turn") if self._turns else None
        return name == "last_voiced" and ended is not None and at > ended

    def _speech(self, speech_id: str) -> _Speech:
        speech = self._speeches.get(speech_id)
        if speech is None:  # created now: it answers the turn the user is in
            turn = self._user_turn()
            speech = self._speeches[speech_id] = _Speech(speech_id, turn)
            turn.speeches.append(speech)
        return speech

    def _latest_speech(self) -> _Speech:
        turn = self._user_turn()
        return turn.speeches[-1] if turn.speeches else self._speech(f"untracked-{len(self._speeches)}")

    def _speech_for(self, name: str) -> _Speech:
        current = _CURRENT_SPEECH.get(None)
        if current is not None:
            return self._speech(current.id)
        if name in ("first_frame_out", "agent_stopped"):  # an output's timer or a clear from outside
            if self._playing is not None:
                return self._playing
            # Audio made and not heard yet is what the output plays: a reply whose first frame comes
            # out while the caller has begun another turn (the reply paused, then resumed) is still
            # its own turn's, not a reply to the turn the caller is in.
            unheard = [
                s
                for s in self._speeches.values()
                if "tts_first_audio" in s.marks and "first_frame_out" not in s.marks and s.done_at is None
            ]
            if unheard:
                return min(unheard, key=lambda s: s.marks["tts_first_audio"])
        return self._latest_speech()  # a node run outside a session (tests)

    @staticmethod
    def _reply(turn: _Turn) -> _Speech | None:
        heard = [s for s in turn.speeches if "first_frame_out" in s.marks]
        if heard:
            return min(heard, key=lambda s: s.marks["first_frame_out"])
        scheduled = [s for s in turn.speeches if s.scheduled or not s.preemptive]
        return scheduled[-1] if scheduled else None

    def _complete(self, turn: _Turn, closing: bool) -> bool:
        if closing:
            return True
        if any(s.done_at is None for s in turn.speeches) or turn is self._clip_turn:
            return False
        following = self._turns[1] if len(self._turns) > 1 else None  # `turn` is the oldest open one
        if following is not None and self._cut_off_unheard(turn) and self._goes_on_in(following) is None:
            return False  # whose the clip's voice marks are is known once the caller's next words end
        # A reply cut off before a sample of it was heard answers nothing: LiveKit cuts off a reply
        # when a later final of the same turn adds words, and makes another. Written at the cut,
        # the turn had no reply, the next was made on a turn of its own that the caller's next
        # clip then joined, and every later record of the call held the reply before its clip
        # (v2v -6.5 s; a falsetto clip at two calls, 2026-12-06).
        answered = any(s.scheduled and not (s.interrupted and "first_frame_out" not in s.marks) for s in turn.speeches)
        # the turn is over and the ASR heard no words in it: LiveKit will not answer it (unless the
        # ASR called it speech, `unheard`: then the agent asks the caller to repeat)
        wordless = "end_of_turn" in turn.marks and bool(turn.finals) and not any(t.strip() for _, t in turn.finals)
        return answered or (wordless and "unheard" not in turn.marks) or turn is not self._turns[-1]

    def _flush(self, closing: bool = False) -> None:
        while self._turns and self._complete(self._turns[0], closing):
            turn = self._turns.pop(0)
            following = self._turns[0] if self._turns else None
            if following is not None and self._tail_unheard(following) and self._heard_whole(turn):
                turn.marks["last_voiced"] = self._turns.pop(0).marks["last_voiced"]
                following = self._turns[0] if self._turns else None
            if following is not None and self._cut_off_unheard(turn) and self._goes_on_in(following):
                for name in ("first_voiced", "last_voiced"):
                    if name in turn.marks:
                        following.marks[name] = turn.marks.pop(name)
            self._write(turn, following)

    # A clip the VAD cut at a pause, whose first part got a reply that the words after the pause
    # cut off before a sample of it was heard: the caller heard only the reply to the words that
    # went on, so the clip's voice marks go with that turn, whose endpoint then holds the rest of
    # the clip as the VAD heard it. Kept apart, the clip sat on a turn without a reply, and the
    # simulated caller, counting it answered, spoke its next clip over the real reply (a falsetto
    # clip Silero hears 0.1 s of, in every bench calls run of 2026-12-06). Only with ground truth:
    # in a room each part's voice marks are the VAD's estimate of that part.

    # A clip whose end the VAD never heard: it ended the turn at a pause, and the words after it
    # were too soft for a speech start, so the clip's last voiced sample opened a turn (see
    # `_starts_turn`) that nothing else comes to. Once the ended turn's reply has played out
    # uninterrupted, the VAD heard no more of the caller: that reply answered the clip, and its
    # endpoint says the VAD ended the turn before the voice did. Left open, the turn had no
    # reply until the simulated caller gave up (a 2-minute soak at two calls, 2026-12-06).

    @staticmethod
    def _tail_unheard(turn: _Turn) -> bool:
        """`turn` holds a clip's last voiced sample and nothing else."""
        return list(turn.marks) == ["last_voiced"] and not (turn.finals or turn.preflights or turn.speeches)

    def _heard_whole(self, turn: _Turn) -> bool:
        """`turn`'s reply was heard, and not interrupted."""
        reply = self._reply(turn)
        return reply is not None and "first_frame_out" in reply.marks and not reply.interrupted

    def _cut_off_unheard(self, turn: _Turn) -> bool:
        """`turn` holds a clip's end and no reply to it was heard."""
        if not self._ground_truth_io or "last_voiced" not in turn.marks:
            return False
        reply = self._reply(turn)
        return reply is None or "first_frame_out" not in reply.marks

    @staticmethod
    def _goes_on_in(following: _Turn) -> bool | None:
        """Whether `following` is the same clip going on (None: not known yet). A new clip
        begins with its first voiced sample, which can come just after the VAD's speech start."""
        if "first_voiced" in following.marks or "last_voiced" in following.marks:
            return False
        if "end_of_turn" in following.marks or following.finals:
            return True
        return None

    def close(self) -> None:
        """Write every open turn as it stands: the call ended, or its owner gave up waiting for
        a reply (a speech that still comes is then nobody's)."""
        self._flush(closing=True)

    def _write(self, turn: _Turn, following: _Turn | None) -> None:
        if not turn.marks and not turn.speeches:
            return
        reply = self._reply(turn)
        marks = dict(turn.marks)
        if turn.finals:
            final_at, final_text = turn.finals[-1]
            marks["final_transcript"] = final_at
            held = [t for t, text in turn.preflights if t <= final_at and _words(text) == _words(final_text)]
            if held:
                marks["preflight_transcript"] = held[-1]
        if reply is not None:
            marks.update(reply.marks)
        preemptive = [s for s in turn.speeches if s.preemptive]
        discarded = [s for s in preemptive if not s.scheduled and s.done_at is not None]
        wasted = sum(s.done_at - min(s.marks.values(), default=s.done_at) for s in discarded)  # type: ignore[operator]
        next_voiced = None
        if following is not None:
            next_voiced = following.marks.get("first_voiced", following.marks.get("speech_start"))
        self._written += 1
        livekit: dict[str, Any] = {"user": turn.user_metrics} if turn.user_metrics else {}
        if reply is not None:
            livekit.update(speech_id=reply.id, metrics=reply.metrics)
        record = build_record(
            self.session_id,
            self._written,
            marks,
            self._budget,
            min_endpoint_ms=self._min_endpoint_ms,
            next_voiced=next_voiced,
            user_text=turn.user_text or (turn.finals[-1][1] if turn.finals else ""),
            agent_text=reply.text if reply is not None else "",
            speech_id=reply.id if reply is not None else None,
            interrupted=reply is not None and reply.interrupted,
            false_interruptions=turn.false_interruptions,
            preflights=len(turn.preflights),
            preemptive=Preemptive(
                started=len(preemptive),
                used=reply is not None and reply.preemptive,
                discarded_ms=round(wasted * 1000.0, 1),
            ),
            livekit=livekit,
        )
        if record.invalid:
            log.warning("turn %d of %s breaks its invariants: %s", record.turn, self.session_id, record.invalid)
        self._sink(record)
