"""What every command group shares: a subcommand with `--profile`, and argument types."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from configs import Settings, default_profile

Command = Callable[[argparse.Namespace, Settings], int]


def add_command(sub: argparse._SubParsersAction, name: str, fn: Command, help: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help)
    add_profile(parser)
    parser.set_defaults(fn=fn)
    return parser


def add_profile(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        default=default_profile(),  # read after .env (cli.main)
        help="settings profile (configs/NAME.yaml) or a YAML path (default: $HALFSEC_PROFILE, else cpu)",
    )


def concurrency_levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(
            f"expected positive whole numbers separated by commas, like 1,4,8 (got {text!r})"
        )
    return levels


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number (got {text!r})")
    return int(text)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected seconds, 0 or more (got {text!r})")
    return value


def minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected minutes, more than 0 (got {text!r})")
    return value
