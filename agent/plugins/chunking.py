"""Where reply text is cut for TTS: the first chunk at the first clause, the rest by sentence.

Kokoro's time to first audio grows with the chunk (cpu profile: ~0.45 s for "Sure," against
~0.7 s for "Sure, I can help with that." and 1.6 s for a 12-word sentence), and the LLM needs
time to finish a sentence too. So the first chunk of a reply ends at its first clause
punctuation, even after one word: "Sure,", "Of course,", "Thanks for waiting," are phrases a
speaker pauses after anyway, and services/tts ends the chunk with a comma's pause. After that,
whole sentences keep the prosody. Sentence splitting (and merging sentences under 12
characters) is LiveKit's blingfire tokenizer; only the first cut is ours.

The price on a slow TTS: while "Sure," plays, the rest of the sentence is still being
synthesised, and the caller may hear a longer pause after it (`halfsec bench tts` reports this
as stall). The rest of the sentence is not heard any later than if it had been sent whole.
`tts.first_clause_words` asks for more words before the first cut.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from livekit.agents import tokenize

_CLAUSE_END = re.compile(r"[,;:\u2013\u2014](?=\s)")


class FirstClauseSplitter:
    """Tokenize callable for LiveKit's BufferedSentenceStream, one per reply (it keeps state)."""

    def __init__(self, split_sentences: Callable[[str], list[str]], min_words: int) -> None:
        self._split = split_sentences
        self._min_words = min_words
        self._first = True

    def __call__(self, text: str) -> list[str]:
        sentences = self._split(text)
        if self._first and sentences:
            head = sentences[0]
            for m in _CLAUSE_END.finditer(head):
                clause, rest = head[: m.end()], head[m.end() :].strip()
                if len(clause.split()) >= self._min_words and rest:
                    sentences = [clause, rest, *sentences[1:]]
                    break
            # The stream emits the first token as soon as a second one exists.
            self._first = len(sentences) < 2
        return sentences


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
