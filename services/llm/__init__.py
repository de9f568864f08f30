"""The LLM: vLLM's own OpenAI-compatible server, launched from settings (launch.py)."""

import re

# Enough text for the first spoken chunk: a sentence end after a few characters. The agent marks
# `llm_first_sentence` on it and `halfsec bench llm` times it, so both mean the same moment.
FIRST_SENTENCE = re.compile(r"\S.{8,}?[.!?](\s|$)", re.DOTALL)
