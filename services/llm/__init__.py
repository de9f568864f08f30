"""The LLM: vLLM's own OpenAI-compatible server, launched from settings (launch.py)."""

import re

from services.tts.text.punctuation import CLOSERS, SENTENCE_MARKS

# The LLM's first sentence: a sentence end (the marks the TTS cuts sentences at, so a ";" is no
# end here either) after a few characters. The agent marks `llm_first_sentence` on it and
# `halfsec bench llm` times it, so both mean the same moment. The first chunk the TTS gets may be
# shorter, a clause (services/tts/text/cuts.py): its moment is the agent's `tts_request`.
FIRST_SENTENCE = re.compile(rf"\S.{{8,}}?[{re.escape(SENTENCE_MARKS)}](\s|$)", re.DOTALL)

# A complete sentence inside a streamed reply: FIRST_SENTENCE's rule, and the space after its mark
# already there (mid-stream, "3." may still become "3.14").
_SENTENCE = re.compile(rf"\S.{{8,}}?[{re.escape(SENTENCE_MARKS)}][{re.escape(CLOSERS)}]*(?=\s)", re.DOTALL)


def sentence_ends(text: str) -> list[int]:
    """Where each complete sentence of `text` ends, by FIRST_SENTENCE's rule (a short "Sure."
    runs on into the next); after the last one, the text is not yet a sentence."""
    ends, at = [], 0
    while (m := _SENTENCE.match(text, len(text) - len(text[at:].lstrip()))) is not None:
        ends.append(at := m.end())
    return ends
