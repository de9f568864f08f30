"""The live latency dashboard: an aiohttp server following turns.jsonl, and its page."""

from .server import Dashboard, make_app, running, serve

__all__ = ["Dashboard", "make_app", "running", "serve"]
