"""The kiosk: a page that calls the agent from a browser, and the token endpoint behind it."""

from .server import Running, make_app, running
from .tokens import Grant, LiveKitCredentials, MissingCredentials, mint

__all__ = ["Grant", "LiveKitCredentials", "MissingCredentials", "Running", "make_app", "mint", "running"]
