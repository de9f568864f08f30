"""The LLM: vLLM's own OpenAI-compatible server, launched from settings (launch.py)."""
