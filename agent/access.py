"""Who may use the dashboard, and who may read the calls' words on it.

On loopback it stays open, words included: the page is for a browser on this machine, and a
browser sends no bearer header. Bound elsewhere (which needs HALFSEC_SERVICE_TOKEN), every route
but /health asks for the token, and only a request carrying it gets the words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypedDict

from aiohttp import web
from aiohttp.typedefs import Middleware

from configs import Settings, SettingsError
from configs.settings import TOKEN_ENV, is_loopback
from services.http import bearer_auth, has_token


class DashboardAccess(TypedDict, total=False):
    """Keyword arguments of `latency.dashboard.running` / `serve`."""

    middlewares: Sequence[Middleware]
    show_transcripts: Callable[[web.Request], bool]


def dashboard_access(settings: Settings, host: str) -> DashboardAccess:
    if is_loopback(host):
        return {}
    token = settings.token()
    if token is None:  # settings refuse this for latency.dashboard_host; `--host` gets here
        raise SettingsError(f"dashboard host {host} is not a loopback address: set {TOKEN_ENV}, or bind to 127.0.0.1")
    return {"middlewares": [bearer_auth(token)], "show_transcripts": lambda request: has_token(request, token)}
