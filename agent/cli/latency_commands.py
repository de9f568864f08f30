"""`halfsec report` and `halfsec dashboard`: what the turn records say, after a run and live."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from configs import Settings
from latency import Budget

from .args import add_command

console = Console(stderr=True)


def _budget(settings: Settings) -> Budget:
    return Budget(*settings.latency.budget_values())


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from latency.records import load_records
    from latency.report import render, summarize

    # Records carry the budget they were judged against; older ones get the profile's.
    budget = _budget(settings)
    records = load_records(args.source, budget)
    summary = summarize(records, budget, worst=args.worst)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        render(summary, Console(), source=str(args.source))
    if args.plot:
        from latency.plots import write_plots

        written = write_plots(records, budget, args.plot)
        console.print(f"wrote {' and '.join(str(p) for p in written)}", highlight=False, soft_wrap=True)
    return 0 if records else 1


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    from latency.dashboard import serve

    from ..access import dashboard_access

    host = args.host or settings.latency.dashboard_host
    serve(
        args.run,
        _budget(settings),
        host=host,
        port=args.port or settings.latency.dashboard_port,
        window=args.window,
        announce=lambda line: console.print(line, highlight=False, soft_wrap=True),
        **dashboard_access(settings, host),
    )
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    report = add_command(
        sub, "report", cmd_report, "latency percentiles per stage, budget share and worst turns of a run"
    )
    report.add_argument("source", metavar="RUN_DIR_OR_JSONL", help="a turns.jsonl, or a directory searched for them")
    report.add_argument("--json", action="store_true", help="print the summary as JSON instead of tables")
    report.add_argument("--plot", metavar="FILE.png", help="also write FILE-waterfall.png and FILE-histogram.png")
    report.add_argument("--worst", type=int, default=5, help="how many worst turns to list (default 5)")
    dash = add_command(sub, "dashboard", cmd_dashboard, "a local web page following turns.jsonl live, with /metrics")
    dash.add_argument("--run", default="runs", metavar="DIR_OR_JSONL", help="what to follow (default: runs/)")
    dash.add_argument("--port", type=int, help="port (default: latency.dashboard_port, 8110)")
    dash.add_argument(
        "--host", help="address to listen on (default: latency.dashboard_host, 127.0.0.1; elsewhere needs the token)"
    )
    dash.add_argument("--window", type=int, default=100, help="turns in the rolling percentiles (default 100)")
