"""One final per caller turn, when the session's VAD ends turns (`turn.detection: vad`).

services/asr sends a final at each of *its* endpoints. Its VAD and the session's disagree at
the edges: the service may end an utterance at a pause ("... many books, but um") that the
session hears as part of the turn, and its final for the rest may come after the session's VAD
has ended the turn. LiveKit commits a turn on the finals it has when its VAD ends it: it would
answer the first part alone, then take the rest as a turn of its own, which stops that first
reply (one such turn was lost in `halfsec bench compare`). So the service's finals are held
while the session hears the caller speak, and handed to LiveKit as one final once it stops:

- a final while the caller speaks is held (LiveKit gets the words as an interim meanwhile);
- when the caller stops, the held words go out at once, unless the service is still inside an
  utterance it has started (its final is the rest of the turn): they then go out with that
  final, or after `wait_s` without it;
- a final while the caller is silent goes out at once, with any held words before it.

Interims and preflights carry the held words before their own, so a preflight is the final it
may become, and LiveKit's preemptive reply on it is kept.

Words that stop where a caller would go on (`looks_unfinished`: a filler, a trailing article or
conjunction, "..." or a comma) are held `unfinished_wait_s` after the caller stops, so a pause
inside an utterance ("montreal uh ... forced aligner") no longer ends the turn with a reply the
next words stop. Their reply is started meanwhile: the held words go out as a preflight when the
hold begins, LiveKit starts its preemptive reply on it, and the final at the end of the wait
adopts that reply (the caller's next words make it stale and LiveKit drops it). In six `halfsec
bench calls --concurrency 2` runs (2026-12-07), 47 turns were stopped by the caller's own next
words; 28 of those transcripts end as `looks_unfinished` says, and 4 of the 236 answered turns.
Silero hears pauses of 0.2-0.8 s inside the dev set's filler clips (the session's VAD stops 0.2 s
into one), hence the 0.8 s of `turn.unfinished_wait_s`. Three dev-set runs each way: turns stopped
so 25 -> 11, v2v P95 1876 -> 1554 ms pooled. On held-out clips, where such words were the whole
turn ("But..." for "bat", a podcast cut after "this is a"), holding them with no reply started
added the whole wait to v2v (two-call P95 1222, 1167 -> 1770, 1778 ms); with the reply made
during the wait, 1272 and 1340 (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

# The rest of the turn's final comes at the service's endpoint (the same 0.2 s of silence as
# the session's VAD) plus its decode, ~0.1-0.4 s after the session's end of turn on 2 cores.
# Past this, the held words are answered alone rather than keep the caller waiting.
WAIT_S = 1.0

# Words after which an English sentence is not over. Kept to fillers, articles, possessives and
# conjunctions: prepositions can end one ("log in", "what is it for"), and so can "so" and "like".
_OPEN_WORDS = frozenset(
    {
        *("uh", "um", "uhm", "er", "erm", "ah", "hm", "hmm", "mm"),
        *("a", "an", "the", "my", "your", "our", "their"),
        *("and", "or", "but", "because", "of", "to", "with"),
    }
)
_OPEN_ENDINGS = ("...", "\u2026", ",", "-", "\u2013", "\u2014")  # Whisper's trailing off, a comma, a dash
_WORD = re.compile(r"[a-z']+")


def looks_unfinished(text: str) -> bool:
    """Whether `text` (a turn's words so far) stops where a caller would go on."""
    text = text.strip()
    if not text or text.endswith(("?", "!")):
        return False
    if text.endswith(_OPEN_ENDINGS):
        return True
    words = _WORD.findall(text.lower())
    return bool(words) and words[-1] in _OPEN_WORDS


class TurnWords:
    def __init__(
        self,
        final: Callable[[str], None],
        interim: Callable[[str], None],
        wait_s: float = WAIT_S,
        unfinished_wait_s: float | None = None,
        preflight: Callable[[str], None] | None = None,
    ) -> None:
        self._final, self._interim, self._wait_s = final, interim, wait_s
        self._preflight = preflight  # held unfinished words, as the final they become if the caller is done
        self._unfinished_wait_s = unfinished_wait_s  # None: unfinished words go out like any
        self._stopped_at: float | None = None  # loop time the caller last stopped
        self._held: list[str] = []
        self._speaking = False  # the session's VAD hears the caller
        # utterances the service has started and not yet given a final for (the next one may
        # start while the last one's final is still being decoded)
        self._open = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def holding(self) -> bool:
        """Words of this turn are still to come: an empty final now ends nothing."""
        return self._speaking or bool(self._held)

    def prefixed(self, text: str) -> str:
        """`text` (an interim, a preflight) as LiveKit should see it: after the held words."""
        return " ".join([*self._held, text]) if text else text

    def waits_on(self, text: str) -> bool:
        """`text` (with the held words) would be held when the caller stops."""
        return self._unfinished_wait_s is not None and looks_unfinished(text)

    # -- the session's VAD

    def caller_started(self) -> None:
        self._speaking = True
        self._stopped_at = None
        self._cancel_timer()

    def caller_stopped(self) -> None:
        self._speaking = False
        self._stopped_at = asyncio.get_running_loop().time()
        if not self._held:
            return
        if self._open:
            self._timer = asyncio.get_running_loop().call_later(self._wait_s, self._release, "")
        else:
            self._release("")

    # -- the service

    def utterance_started(self) -> None:
        self._open += 1

    def final(self, text: str) -> None:
        self._open = max(0, self._open - 1)
        if self._speaking:
            if text:
                self._held.append(text)
                self._interim(" ".join(self._held))
            return
        self._release(text)

    def reset(self) -> None:
        """The service is gone (the turn gets the fallback): nothing held is still due."""
        self._held, self._open = [], 0
        self._cancel_timer()

    def _release(self, text: str) -> None:
        self._cancel_timer()
        words = " ".join([*self._held, text] if text else self._held)
        self._held = []
        if self.waits_on(words) and self._stopped_at is not None and self._unfinished_wait_s is not None:
            loop = asyncio.get_running_loop()
            left = self._stopped_at + self._unfinished_wait_s - loop.time()
            if left > 0:  # the caller may go on: the words wait for the rest, or for `left`
                self._held = [words]
                self._timer = loop.call_later(left, self._flush)
                if self._preflight is not None:  # their reply is made while they wait
                    self._preflight(words)
                return
        self._final(words)

    def _flush(self) -> None:
        """The caller did not go on: the unfinished words are the turn."""
        self._timer = None
        words, self._held = " ".join(self._held), []
        self._final(words)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
