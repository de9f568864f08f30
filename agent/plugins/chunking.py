"""The reply cut for TTS, as LiveKit's tokenizer stream wants it: the first sentence at its clauses,
the rest by sentence.

Only the adapter lives here. The cut itself (`clauses`, and why the first sentence is cut at all)
is services/tts/text/cuts.py's, on the punctuation table the service cuts by too. Sentence
splitting is LiveKit's blingfire tokenizer, which merges sentences under 12 characters into the
next; not the reply's first: a short one ("Okay.", "Sure!") goes alone, as a first clause does.
`tts.first_clause_words` asks for more words before the first cut; `tts.first_phrase_words` cuts a
first-sentence clause at a phrase once that many of its words are in (`first_phrase`), while
fewer than four words of the sentence have gone before it.
"""

from __future__ import annotations

from collections.abc import Callable

from livekit.agents import tokenize

from services.llm import sentence_ends
from services.tts.text.cuts import LATER_CLAUSE_WORDS, clauses


def _one_whole_sentence(text: str) -> bool:
    """`text` is one complete sentence and nothing after it: its end mark and the space after it,
    by the rule the reply limit passes sentences by (so "3." mid-stream is no end)."""
    ends = sentence_ends(text)
    return len(ends) == 1 and not text[ends[0] :].strip()


class FirstClauseSplitter:
    """Tokenize callable for LiveKit's BufferedSentenceStream: the reply's first sentence cut at
    its clauses, later sentences whole. One per reply (it keeps state)."""

    def __init__(
        self,
        split_sentences: Callable[[str], list[str]],
        split_unmerged: Callable[[str], list[str]],
        min_words: int,
        phrase_from_words: int | None = None,
        *,
        streaming: bool = False,
    ) -> None:
        self._split = split_sentences
        self._unmerged = split_unmerged  # the same sentences, short ones not merged into the next
        self._streaming = streaming  # the text grows: a clause mark at its end ends a clause
        self._min_words = min_words  # for the reply's first clause
        self._phrase_from_words = phrase_from_words  # a clause with this many words in is cut at a phrase
        self._in_first_sentence = True
        self._said_words = 0  # of the first sentence, already handed on

    def __call__(self, text: str) -> list[str]:
        sentences = self._split(text)
        if not (self._in_first_sentence and sentences):
            return sentences
        first = self._unmerged(text) if self._said_words == 0 else []
        if len(first) > 1 and len(first[0]) < len(sentences[0]) and (at := text.find(first[0])) >= 0:
            # Merged, "Okay." waited for the whole next sentence, or for a phrase cut 8 words into it.
            # Something follows it, so it is whole. Words streamed every 44 ms (vLLM's gap here),
            # first chunk of "Sure. I can help you book a table for tonight." 444 -> 89 ms, "Okay.
            # Anything else?" 224 -> 91; Kokoro's first audio is the same for either piece (~370 ms).
            sentences = [first[0], *self._split(text[at + len(first[0]) :])]
        pieces = clauses(
            sentences[0], self._min_words, self._phrase_from_words, self._said_words, open_end=self._streaming
        )
        tokens = [*pieces, *sentences[1:]]
        if len(sentences) == 1 and _one_whole_sentence(text):
            # LiveKit's stream holds its last token until another starts, and the reply's later
            # sentences come only whole (agent/reply.py): a complete first sentence would wait
            # for all of the second (~1 s here). The empty token lets its pieces go now.
            tokens.append("")
        if len(tokens) >= 2:  # the stream emits tokens[0] now and calls again with the rest
            self._min_words = LATER_CLAUSE_WORDS
            self._in_first_sentence = len(pieces) > 1
            self._said_words += len(pieces[0].split())
        return tokens


class FirstClauseTokenizer(tokenize.SentenceTokenizer):
    def __init__(
        self,
        *,
        min_clause_words: int = 1,
        phrase_from_words: int | None = None,
        min_sentence_len: int = 12,
        # LiveKit's stream tokenizes only once this many characters wait: at 8, "Yes," (4) waited
        # for the LLM's next token. Splitting a few characters again per token costs microseconds.
        context_len: int = 1,
    ) -> None:
        self._sentences = tokenize.blingfire.SentenceTokenizer(min_sentence_len=min_sentence_len)
        self._unmerged = tokenize.blingfire.SentenceTokenizer(min_sentence_len=1)
        self._min_words = min_clause_words
        self._phrase_from_words = phrase_from_words
        self._context_len = context_len

    def _splitter(self, *, streaming: bool = False) -> FirstClauseSplitter:
        return FirstClauseSplitter(
            self._sentences.tokenize,
            self._unmerged.tokenize,
            self._min_words,
            self._phrase_from_words,
            streaming=streaming,
        )

    def tokenize(self, text: str, *, language: str | None = None) -> list[str]:
        return self._splitter()(text)

    def stream(self, *, language: str | None = None) -> tokenize.SentenceStream:
        return tokenize.token_stream.BufferedSentenceStream(
            tokenizer=self._splitter(streaming=True),
            # Each token is already a clause or a merged sentence: re-merging here would glue
            # "Sure," back onto the sentence it was cut from.
            min_token_len=1,
            min_ctx_len=self._context_len,
        )
