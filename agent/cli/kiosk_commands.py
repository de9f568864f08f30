"""`halfsec kiosk`: the browser page that calls the agent, and its token endpoint (agent/kiosk/)."""

from __future__ import annotations

import argparse
import asyncio
import signal

from rich.console import Console
from rich.markup import escape

from configs import Settings

from .args import add_command, port

console = Console(stderr=True)


def cmd_kiosk(args: argparse.Namespace, settings: Settings) -> int:
    from ..kiosk import running

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with running(settings, host=args.host, port=args.port) as kiosk:
            where = (
                escape(f"calls {kiosk.livekit_url}")
                if kiosk.livekit_url
                else f"[yellow]cannot call:[/] {escape(kiosk.problem or '')}"
            )
            console.print(f"kiosk on {kiosk.url} ({where}); Ctrl-C stops", highlight=False, soft_wrap=True)
            await stop.wait()

    try:
        asyncio.run(run())
    except OSError as exc:  # the address is taken or not this machine's
        address = f"{args.host or settings.kiosk.host}:{args.port or settings.kiosk.port}"
        console.print(
            f"[red]halfsec: error:[/] kiosk cannot listen on {escape(address)}: {escape(str(exc.strerror or exc))}",
            highlight=False,
            soft_wrap=True,
        )
        return 2
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    kiosk = add_command(
        sub, "kiosk", cmd_kiosk, "a web page to talk to the agent from a browser, with its LiveKit token endpoint"
    )
    kiosk.add_argument("--host", help="address to listen on (default: kiosk.host, 127.0.0.1)")
    kiosk.add_argument("--port", type=port, help="port (default: kiosk.port, 8120)")
