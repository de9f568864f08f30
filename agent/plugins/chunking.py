"""Where reply text is cut for TTS: the first sentence at its clauses, the rest by sentence.

Kokoro's time to first audio grows with the chunk (cpu profile: ~0.45 s for "Sure," against
~0.7 s for "Sure, I can help with that." and 1.6 s for a 12-word sentence), and the LLM needs
time to finish a sentence too. So the first chunk of a reply ends at its first clause
punctuation, even after one word: "Sure,", "Of course,", "Thanks for waiting," are phrases a
speaker pauses after anyway, and services/tts ends the chunk with a comma's pause. The rest of
the first sentence is cut at its clause marks too (clauses of 3+ words), so that each piece is
quick to make while the one before it plays. Later sentences go whole and keep their prosody.
Sentence splitting (and merging sentences under 12 characters) is LiveKit's blingfire
tokenizer; only the clause cuts are ours.

The price on a slow TTS: while "Sure," plays, the next clause may still be being synthesised,
and the caller hears a longer pause after it (`halfsec bench tts` reports this as stall). The
first sentence is still heard sooner than if it had been sent whole (same bench).
`tts.first_clause_words` asks for more words before the first cut.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from livekit.agents import tokenize

_CLAUSE_END = re.compile(r"[,;:\u2013\u2014](?=\s)")


LATER_CLAUSE_WORDS = 3  # a later clause of the first sentence goes alone only with this many words


def clauses(sentence: str, first_min_words: int) -> list[str]:
    """`sentence` cut after each clause mark that ends a long enough clause (the first one needs
    `first_min_words`, later ones LATER_CLAUSE_WORDS) and leaves words after it."""
    pieces: list[str] = []
    start = 0
    for m in _CLAUSE_END.finditer(sentence):
        clause = sentence[start : m.end()].strip()
        wanted = first_min_words if not pieces else LATER_CLAUSE_WORDS
        if len(clause.split()) >= wanted and sentence[m.end() :].strip():
            pieces.append(clause)
            start = m.end()
    return [*pieces, sentence[start:].strip()]


class FirstClauseSplitter:
    """Tokenize callable for LiveKit's BufferedSentenceStream: the reply's first sentence cut at
    its clauses, later sentences whole. One per reply (it keeps state)."""

    def __init__(self, split_sentences: Callable[[str], list[str]], min_words: int) -> None:
        self._split = split_sentences
        self._min_words = min_words  # for the reply's first clause
        self._in_first_sentence = True

    def __call__(self, text: str) -> list[str]:
        sentences = self._split(text)
        if not (self._in_first_sentence and sentences):
            return sentences
        pieces = clauses(sentences[0], self._min_words)
        tokens = [*pieces, *sentences[1:]]
        if len(tokens) >= 2:  # the stream emits tokens[0] now and calls again with the rest
            self._min_words = LATER_CLAUSE_WORDS
            self._in_first_sentence = len(pieces) > 1
        return tokens


class FirstClauseTokenizer(tokenize.SentenceTokenizer):
    def __init__(self, *, min_clause_words: int = 1, min_sentence_len: int = 12, context_len: int = 8):
        self._sentences = tokenize.blingfire.SentenceTokenizer(min_sentence_len=min_sentence_len)
        self._min_words = min_clause_words
        self._context_len = context_len

    def tokenize(self, text: str, *, language: str | None = None) -> list[str]:
        return FirstClauseSplitter(self._sentences.tokenize, self._min_words)(text)

    def stream(self, *, language: str | None = None) -> tokenize.SentenceStream:
        return tokenize.token_stream.BufferedSentenceStream(
            tokenizer=FirstClauseSplitter(self._sentences.tokenize, self._min_words),
            # Each token is already a clause or a merged sentence: re-merging here would glue
            # "Sure," back onto the sentence it was cut from.
            min_token_len=1,
            min_ctx_len=self._context_len,
        )
