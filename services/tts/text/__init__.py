"""Reply text for speech, for the agent and services/tts alike: what is read aloud, where it is cut
and how it pauses.

- punctuation.py: the one table of which marks end a sentence and which a clause, and the pause
  each asks for. Every cut and every pause reads it.
- cuts.py: where text is cut; the agent's first-sentence clauses (agent/plugins/chunking.py) and
  the service's pieces (server.py).
- markup.py: markdown and emoji out of a whole text, for the service; markup_stream.py: the same
  out of a reply as the LLM streams it, for the agent (its chunker, its TTS and its transcript).
- normalize.py: a whole text rewritten for Kokoro (`speakable`): markup first, then addresses,
  abbreviations, numbers.

The agent imports from here; nothing here imports the agent.
"""
