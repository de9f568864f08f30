"""Transcript assembly for one utterance: the words already settled, the decodes that will settle
more, and the text they join into.

An utterance is decoded in pieces (see policy.py): a piece whose words are settled is never
decoded again, so a transcript is the settled pieces in the order they were spoken, then the
last piece. Decodes finish in any order (the queue serves a final before a commit), so the text
is joined only once every piece before it is in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .decodes import DecodeRequest

Part = str | DecodeRequest  # settled text, or a decode whose text will settle it


@dataclass
class Segments:
    """The current utterance's settled pieces and the positions around them."""

    base: int = 0  # stream sample where the utterance (with its pre-roll) starts
    parts: list[Part] = field(default_factory=list)  # settled, in the order they were spoken
    undecided_from: int = 0  # utterance sample after the settled parts: where a decode starts
    decoded_until: int = 0  # end of the newest decode asked for: interims are paced from it

    def settle(self, parts: Iterable[Part], until: int) -> None:
        """`parts` cover the audio up to `until`: later decodes start there."""
        self.parts.extend(parts)
        self.undecided_from = until

    def asked(self, end: int) -> None:
        self.decoded_until = max(self.decoded_until, end)


class Assembly:
    """A transcript waiting on its decodes, taken front to back: a final checks each decode (and
    may swap it for a better one) in the order the words were spoken, as the text is built."""

    def __init__(self, parts: Iterable[Part]) -> None:
        self.parts = list(parts)  # a copy: settling more later does not change this transcript
        self._texts: list[str] = []

    def waiting_on(self) -> DecodeRequest | None:
        """The first decode whose text is not taken yet (settled text before it is taken on the
        way); None once all of it is."""
        while len(self._texts) < len(self.parts):
            part = self.parts[len(self._texts)]
            if isinstance(part, DecodeRequest):
                return part
            self._texts.append(part)
        return None

    def take(self, text: str) -> None:
        """The text of the decode `waiting_on` returned."""
        self._texts.append(text)

    def swap(self, request: DecodeRequest) -> None:
        """Wait on `request` instead of the decode `waiting_on` returned."""
        self.parts[len(self._texts)] = request

    @property
    def complete(self) -> bool:
        return len(self._texts) == len(self.parts)

    @property
    def text(self) -> str:
        return " ".join(t for t in self._texts if t)
