"""`halfsec demo` and `halfsec measure`: one simulated call through the whole pipeline, and a
call's latency measured on its recording alone."""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from pathlib import Path

from rich.console import Console

from configs import Settings

from .args import add_command, seconds

console = Console(stderr=True)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from services.provision import require
    from services.supervisor import supervisor

    from ..sim import speech
    from ..sim.call import print_summary, run_call
    from ..sim.caller import load_turn

    require(settings, extra=None if args.audio else speech.artifacts(settings))
    files = [Path(f) for f in args.audio] if args.audio else speech.demo_audio(settings)[: args.turns]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"audio file not found: {f}")
        # A bad file stops the demo here, in one line, not minutes later once the services are up.
        # run_call loads it again (a fraction of a second): given paths, it measures the call on them.
        load_turn(f)
    out = Path(args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")

    async def run():  # -> CallResult
        # SIGTERM cancels the call like Ctrl-C does, so the services we started are stopped too
        task = asyncio.current_task()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        t0 = time.monotonic()
        async with supervisor(settings, args.profile):
            line = " over an 8 kHz G.711 mu-law phone line" if args.telephone else ""
            console.print(f"services ready in {time.monotonic() - t0:.1f}s; calling with {len(files)} turns{line}")
            return await run_call(settings, files, out, barge_in_at_s=args.barge_in_at, telephone=args.telephone)

    try:
        result = asyncio.run(run())
    except asyncio.CancelledError:
        console.print("halfsec: demo stopped; services stopped")
        return 143
    print_summary(result, settings, Console())
    return 0 if result.turns else 1


def cmd_measure(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from ..sim.voice import measure_call, render_measured

    turns = measure_call(args.call_wav, args.sources)
    render_measured(turns, args.call_wav, Console())
    if args.json:
        print(json.dumps([vars(t) for t in turns]))
    return 0 if all(t.v2v_ms is not None or t.talked_over for t in turns) else 1


def add_commands(sub: argparse._SubParsersAction) -> None:
    demo = add_command(sub, "demo", cmd_demo, "one simulated call through the whole pipeline")
    demo.add_argument("--audio", nargs="+", metavar="FILE", help="speech files, one per user turn")
    demo.add_argument("--turns", type=int, default=3, help="turns of the built-in speech (default 3)")
    demo.add_argument("--out", metavar="DIR", help="where turns.jsonl and call.wav go")
    demo.add_argument(
        "--barge-in-at",
        type=seconds,
        metavar="SECONDS",
        help="the caller starts each next utterance this long after the agent starts speaking",
    )
    demo.add_argument(
        "--telephone",
        action="store_true",
        help="the caller is on the phone: the agent hears them through an 8 kHz G.711 mu-law line",
    )
    measure = add_command(sub, "measure", cmd_measure, "per-turn v2v measured on a call recording (call.wav) alone")
    measure.add_argument("call_wav", metavar="CALL_WAV", help="a call's loopback recording (caller left, agent right)")
    measure.add_argument(
        "--sources", nargs="+", required=True, metavar="FILE", help="the speech files the caller said, in order"
    )
    measure.add_argument("--json", action="store_true", help="also print the turns as one JSON line")
