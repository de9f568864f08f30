"""Reply text for speech, for the agent and services/tts alike: where it is cut and how it pauses.

- punctuation.py: the one table of which marks end a sentence and which a clause, and the pause
  each asks for. Every cut and every pause reads it.
- cuts.py: where text is cut; the agent's first-sentence clauses (agent/plugins/chunking.py) and
  the service's pieces (server.py).

The agent imports from here; nothing here imports the agent.
"""
