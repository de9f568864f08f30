"""The `halfsec` command: a thin dispatcher.

Each group of commands is a small module that adds its parsers and runs them:
`service_commands` (models, services, plan, up), `call_commands` (demo, measure),
`bench_commands` (bench asr, llm, tts, calls), `latency_commands` (report, dashboard).
Every command gets the parsed arguments and the profile's settings, and returns the exit code.
"""

from __future__ import annotations

import argparse
import logging

from dotenv import find_dotenv, load_dotenv
from rich.console import Console
from rich.markup import escape

from configs import SettingsError, load_settings

from . import bench_commands, call_commands, latency_commands, service_commands

GROUPS = (service_commands, call_commands, bench_commands, latency_commands)
console = Console(stderr=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="halfsec", description="real-time voice agent on one GPU")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # A .env in the working directory (or above) fills what the environment leaves unset:
    # LIVEKIT_URL and its keys, HALFSEC_PROFILE, any HALFSEC_* setting. The services and job
    # processes this command starts inherit it.
    load_dotenv(find_dotenv(usecwd=True), override=False)
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("halfsec").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    from services.provision import ProvisionError
    from services.supervisor import ServiceError

    from ..worker import WorkerConfigError

    try:
        settings = load_settings(args.profile)
        return args.fn(args, settings)
    except (SettingsError, ProvisionError, ServiceError, WorkerConfigError, FileNotFoundError, ValueError) as exc:
        # escaped: "[from HALFSEC_ASR__PORT]" in a message is text, not a style to drop
        console.print(f"[red]halfsec: error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        return 130
