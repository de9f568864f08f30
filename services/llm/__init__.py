"""The LLM: vLLM's own OpenAI-compatible server, launched from settings (launch.py)."""

import re

from services.tts.text.punctuation import SENTENCE_MARKS

# The LLM's first sentence: a sentence end (the marks the TTS cuts sentences at, so a ";" is no
# end here either) after a few characters. The agent marks `llm_first_sentence` on it and
# `halfsec bench llm` times it, so both mean the same moment. The first chunk the TTS gets may be
# shorter, a clause (services/tts/text/cuts.py): its moment is the agent's `tts_request`.
FIRST_SENTENCE = re.compile(rf"\S.{{8,}}?[{re.escape(SENTENCE_MARKS)}](\s|$)", re.DOTALL)
