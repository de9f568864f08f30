"""Which punctuation ends a sentence, which ends a clause, and the pause each asks for.

The one table: the agent's chunker, the service's pieces, the pause after a piece (edges.py) and
the LLM's first-sentence mark (services/llm) all read it, so they agree on where speech may be cut.

`;` ends a clause, not a sentence: it joins two halves of one sentence, and a speaker pauses there
about as long as at a comma. kokoro-onnx counts it among its clause marks too (its own pause after
it is the clause pause below), LiveKit's blingfire sentence tokenizer does not end a sentence at it,
and the agent sends a later sentence with a `;` whole to keep its prosody, so the service does not
cut it there either.
"""

from __future__ import annotations

import re

SENTENCE_MARKS = ".!?"
CLAUSE_MARKS = ",;:\u2013\u2014"  # en and em dash too: an LLM sets them off with spaces, as clauses

# kokoro-onnx's own pauses between the batches of one synthesis; a piece cut here gets the same
SENTENCE_PAUSE_S = 0.25
CLAUSE_PAUSE_S = 0.1
PAUSE_S = dict.fromkeys(SENTENCE_MARKS, SENTENCE_PAUSE_S) | dict.fromkeys(CLAUSE_MARKS, CLAUSE_PAUSE_S)

# What may close a sentence after its mark without being spoken: 'He said "done."'
CLOSERS = "\"')]\u201d\u2019"

# The space after a mark: where a text may be cut (a mark with no space after it, as in "3.14",
# "1,250" or "a:b", cuts nothing).
SENTENCE_GAP = re.compile(rf"(?<=[{re.escape(SENTENCE_MARKS)}])\s+")
CLAUSE_GAP = re.compile(rf"(?<=[{re.escape(CLAUSE_MARKS)}])\s+")


def last_mark(text: str) -> str:
    """The character `text` ends with, closing quotes and brackets looked through ("" if none)."""
    return text.rstrip().rstrip(CLOSERS)[-1:]


def pause_after(text: str) -> float:
    """The pause the end of `text` asks for: a sentence's, a clause's, or none."""
    return PAUSE_S.get(last_mark(text), 0.0)


def ends_sentence(text: str) -> bool:
    mark = last_mark(text)
    return mark != "" and mark in SENTENCE_MARKS
