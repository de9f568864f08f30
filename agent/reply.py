"""How much of the LLM's reply the caller hears: at most `llm.max_sentences` sentences, none of
them said twice, and no run of words said three times in a row.

Asked for "one or two short sentences", a small model still runs on to `max_tokens` or says a
sentence again; every extra sentence is vLLM and Kokoro time that the caller waits through and
that the next turn (or another call on the box) queues behind. The first sentence passes on as it
streams (its first clause is the reply's first audio), and its end, as a line break, as soon as it
is certain (the TTS's chunker then sends it without waiting for more); a later one is held until it is complete,
which costs nothing since the TTS takes later sentences whole anyway, so a repeat is dropped
before it is said. Once the reply has its sentences, the agent stops reading the stream, which
ends the request at vLLM. Sentences are the LLM's first-sentence rule (services/llm).
"""

from __future__ import annotations

import re

from services.llm import sentence_ends


def _words(sentence: str) -> str:
    return " ".join(re.findall(r"\w+", sentence.lower()))


# A sentence that says the same run of words three times in a row is a small model looping ("to
# be old as opposed to being old as opposed to being old as opposed ..."): it runs on to
# `max_tokens` with no sentence end (19 s of audio to one turn of a plain prompt's replies on
# SmolLM2-135M, 6 Dec), so the reply stops at the third time, before it is passed on. Runs of
# LOOP_MIN_WORDS+: "no, no, no" and "ha ha ha" are said on purpose.
LOOP_MIN_WORDS = 3
LOOP_TIMES = 3


def _loops(text: str) -> bool:
    """The complete words of `text` end in one run said LOOP_TIMES times in a row."""
    complete = text if text[-1:].isspace() else text[: text.rfind(" ") + 1]  # the last word may go on
    words = re.findall(r"\w+", complete.lower())
    for n in range(LOOP_MIN_WORDS, len(words) // LOOP_TIMES + 1):
        run = words[-n:]
        if all(words[-(k + 1) * n : len(words) - k * n] == run for k in range(1, LOOP_TIMES)):
            return True
    return False


class ReplyLimit:
    """Feed the reply's text deltas; pass on what `feed` and, at the end, `flush` return. `done`:
    the reply has all it will say (stop reading the stream)."""

    def __init__(self, max_sentences: int | None) -> None:
        self._max = max_sentences
        self._text = ""  # the reply as streamed
        self._passed = 0  # how much of it has been passed on
        self._ends: list[int] = []  # where the complete sentences looked at end
        self._said: list[str] = []  # the sentences passed on, as words
        self.done = False
        self.repeats = 0  # sentences dropped for saying again what the reply said
        # The space after the first sentence, passed on as a line break: it tells the TTS's
        # chunker (agent/plugins/chunking.py) that sentence is over while the next one is held
        # until whole, so its audio does not wait for the next one to start. A break, not the
        # space: LiveKit's markdown filter holds a trailing space back, and passes a break at once.
        self._break = (-1, -1)

    def feed(self, delta: str) -> str:
        if self.done:
            return ""
        self._text += delta
        ends = sentence_ends(self._text)
        if not ends:  # the first sentence streams as it comes, until it loops
            if _loops(self._text):
                self._repeating()
                return ""
            return self._pass(len(self._text))
        first_ended = not self._ends
        if first_ended:
            space = len(self._text[ends[0] :]) - len(self._text[ends[0] :].lstrip())
            self._break = (ends[0], ends[0] + space)
        until = self._passed
        for end in ends[len(self._ends) :]:
            start = self._ends[-1] if self._ends else 0
            self._ends.append(end)
            if not self._take(self._text[start:end]):
                break
            until = end
            if self.done:
                break
        else:
            if first_ended:  # its line break goes now (see `_break`), with any whole sentences after it
                until = max(until, self._break[1])
            if _loops(self._text[self._ends[-1] :]):  # a later sentence that never ends: not said
                self._repeating()
        return self._pass(until)

    def flush(self) -> str:
        """At the end of the stream: the last sentence, unless it repeats one or is one too many."""
        until = self._passed
        if not self.done and self._ends:  # (before any sentence end, all has streamed already)
            rest = self._text[self._ends[-1] :]
            if rest.strip() and self._take(rest):
                until = len(self._text)
        self.done = True
        return self._pass(until)

    def _take(self, sentence: str) -> bool:
        """Whether `sentence` is said; marks the reply done when it is the last one."""
        words = _words(sentence)
        if words and words in self._said:
            self._repeating()
            return False
        self._said.append(words)
        if self._max is not None and len(self._said) >= self._max:
            self.done = True
        return True

    def _repeating(self) -> None:
        """The model says again what the reply said: it has nothing new after it."""
        self.repeats += 1
        self.done = True

    def _pass(self, until: int) -> str:
        start, (space_from, space_to) = self._passed, self._break
        out = self._text[start:until]
        if start <= space_from < until:
            out = self._text[start:space_from] + "\n" + self._text[max(space_to, start) : until]
        self._passed = max(self._passed, until)
        return out
