"""Where the service cuts a request's (speakable) text into the pieces it synthesises one by one.

Pieces end at sentence ends, so the first audio goes out after one sentence, not the whole text.
No piece may exceed Kokoro's limit of 510 phoneme tokens; the text is bounded by characters
instead, since phonemes are only known inside the backend. Measured with espeak-ng (en-us):
ordinary English runs at 0.96-1.25 phoneme tokens per character, text full of acronyms ("FBI CIA
NASA API") at 2.5, letters spelled one by one ("x y z e g h k") at 2.7. MAX_PIECE_CHARS = 180
stays under 510 tokens up to 2.8 tokens per character. Only runs of "w" ("double-u", 10 tokens
for one letter) go past that; then kokoro-onnx's own batching at 510 tokens still cuts the
phonemes, so nothing is ever truncated, only one piece runs longer. A longer sentence is cut at
clause punctuation, then between words (packing as many as fit), and only a 180-character
"word" is cut inside itself.
"""

from __future__ import annotations

import re

MAX_PIECE_CHARS = 180

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_CLAUSE_END = re.compile(r"(?<=[,:\u2013\u2014])\s+")
_SPEAKABLE = re.compile(r"\w")


def _pack(parts: list[str], limit: int) -> list[str]:
    """Join consecutive parts (with a space) into runs no longer than `limit`."""
    runs: list[str] = []
    for part in parts:
        if runs and len(runs[-1]) + 1 + len(part) <= limit:
            runs[-1] += " " + part
        else:
            runs.append(part)
    return runs


def _bounded(sentence: str, limit: int) -> list[str]:
    if len(sentence) <= limit:
        return [sentence]
    pieces: list[str] = []
    for clause in _pack(_CLAUSE_END.split(sentence), limit):
        if len(clause) <= limit:
            pieces.append(clause)
            continue
        for run in _pack(clause.split(), limit):
            pieces += [run[i : i + limit] for i in range(0, len(run), limit)]
    return pieces


def split_pieces(text: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """Sentences of `text`, each at most `limit` characters, without the ones with no words."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        pieces += _bounded(sentence.strip(), limit)
    return [p for p in pieces if _SPEAKABLE.search(p)]
