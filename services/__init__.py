"""Model services: each model lives once, in its own process, behind a small network protocol.

services/asr  faster-whisper over HTTP      (server.py, client.py, protocol.py)
services/tts  Kokoro over chunked HTTP      (server.py, client.py, protocol.py, backends)
services/llm  vLLM's own OpenAI server      (launch.py builds its command line)
supervisor.py starts them, waits for health, stops them; provision.py fetches the weights.
"""
