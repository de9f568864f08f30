"""The `halfsec` command: models, services, demo, up, bench, report, dashboard."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path

from rich.console import Console

from configs import Settings, SettingsError, load_settings

console = Console(stderr=True)


def _supervisor(settings: Settings, profile: str):  # -> Supervisor
    from services.supervisor import Supervisor, service_specs

    return Supervisor(service_specs(settings, profile), settings.cache_dir / "logs")


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from services.provision import provision

    built = provision(settings, console)
    console.print("all models present; nothing to do" if not built else f"built: {', '.join(built)}")
    return 0


def cmd_services(args: argparse.Namespace, settings: Settings) -> int:
    from services.provision import require

    require(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with _supervisor(settings, args.profile) as sup:
            console.print(f"services up ({', '.join(s.name for s in sup.specs)}); Ctrl-C stops them")
            await stop.wait()
            console.print("stopping services...")

    asyncio.run(run())
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from services.provision import demo_audio, require

    from .demo import print_summary, run_call

    require(settings)
    files = [Path(f) for f in args.audio] if args.audio else demo_audio(settings)[: args.turns]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"audio file not found: {f}")
    out = Path(args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")

    async def run():
        # SIGTERM cancels the call like Ctrl-C does, so the services we started are stopped too
        task = asyncio.current_task()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        t0 = time.monotonic()
        async with _supervisor(settings, args.profile):
            console.print(f"services ready in {time.monotonic() - t0:.1f}s; calling with {len(files)} turns")
            return await run_call(settings, files, out)

    try:
        result = asyncio.run(run())
    except asyncio.CancelledError:
        console.print("halfsec: demo stopped; services stopped")
        return 143
    print_summary(result, settings, Console())
    return 0 if result.turns else 1


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from .worker import run_worker

    run_worker(args.profile)
    return 0


def _budget(settings: Settings):  # -> latency.Budget
    from latency import Budget

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

    serve(
        args.run,
        _budget(settings),
        host=args.host,
        port=args.port or settings.latency.dashboard_port,
        window=args.window,
        announce=lambda line: console.print(line, highlight=False, soft_wrap=True),
    )
    return 0


def cmd_bench_asr(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from rich.table import Table

    from services.asr.bench import run_bench
    from services.supervisor import Supervisor, ServiceError, service_specs

    specs = service_specs(settings, args.profile, ("asr",))
    audio_dir = Path(args.audio_dir) if args.audio_dir else settings.speech_dir / "librivox"

    async def run() -> dict[str, float | int]:
        async with Supervisor(specs, settings.cache_dir / "logs"):
            import aiohttp

            async with aiohttp.ClientSession() as http, http.get(f"{settings.asr.url}/health") as resp:
                running = (await resp.json())["model"]
            if running != settings.asr.model:  # a reused service must be the model asked for
                raise ServiceError(f"the ASR service at {settings.asr.url} runs {running!r}, "
                                   f"not {settings.asr.model!r}: stop it or pick another asr.port")
            return await run_bench(settings.asr.url, audio_dir)

    figures = asyncio.run(run())
    table = Table(title=f"ASR streaming bench: {settings.asr.model}, {figures['files']} files in {audio_dir}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:.1%}" if key.endswith("wer") else str(value))
    Console().print(table)
    if args.json:
        print(json.dumps(figures))
    return 0


def cmd_bench_tts(args: argparse.Namespace, settings: Settings) -> int:
    from rich.table import Table

    from services.supervisor import Supervisor, ServiceError, service_specs
    from services.tts.bench import EAR_MODEL, REPLIES_FILE, load_replies, run_bench

    from .plugins.chunking import FirstClauseTokenizer

    replies_file = Path(args.replies) if args.replies else REPLIES_FILE
    replies = load_replies(replies_file)
    ear_dir = Path(settings.model_path(EAR_MODEL))

    async def run():  # -> BenchResult
        async with Supervisor(service_specs(settings, args.profile, ("tts",)), settings.cache_dir / "logs"):
            import aiohttp

            async with aiohttp.ClientSession() as http, http.get(f"{settings.tts.url}/health") as resp:
                health = await resp.json()
            if "pieces" not in health or health.get("backend") != settings.tts.backend:
                raise ServiceError(f"the TTS service at {settings.tts.url} is not this version with the "
                                   f"{settings.tts.backend!r} backend: stop it or pick another tts.port")
            # the agent's own chunker: the bench times what a caller would hear
            return await run_bench(settings.tts.url, replies, FirstClauseTokenizer().tokenize, ear_dir)

    result = asyncio.run(run())
    figures = result.figures
    table = Table(title=f"TTS bench: Kokoro {settings.tts.backend}, {figures['replies']} replies in {replies_file.name}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:.1%}" if key.endswith("wer") else str(value))
    Console().print(table)
    worst = sorted(result.heard, key=lambda h: h[2], reverse=True)[: args.worst]
    for text, heard, reply_wer in (w for w in worst if w[2] > 0):
        Console().print(f"WER {reply_wer:.0%}: {text!r}\n       heard: {heard!r}", highlight=False, soft_wrap=True)
    if args.json:
        print(json.dumps(figures))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="halfsec", description="real-time voice agent on one GPU")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--profile", default="cpu", help="settings profile (configs/NAME.yaml) or a YAML path")
        p.set_defaults(fn=fn)
        return p

    add("models", cmd_models, "assemble the offline profile's models and test speech")
    add("services", cmd_services, "run the ASR, TTS and LLM services until Ctrl-C")
    demo = add("demo", cmd_demo, "one simulated call through the whole pipeline")
    demo.add_argument("--audio", nargs="+", metavar="FILE", help="speech files, one per user turn")
    demo.add_argument("--turns", type=int, default=3, help="turns of the built-in speech (default 3)")
    demo.add_argument("--out", metavar="DIR", help="where turns.jsonl and call.wav go")
    add("up", cmd_up, "run the LiveKit worker (needs LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET)")
    bench = sub.add_parser("bench", help="benchmarks that print figures").add_subparsers(dest="bench", required=True)
    bench_asr = bench.add_parser("asr", help="stream speech through services/asr: WER, latency, hallucinations")
    bench_asr.add_argument("--profile", default="cpu", help="settings profile")
    bench_asr.add_argument("--audio-dir", metavar="DIR", help="audio files with same-stem .txt references "
                           "(default: the LibriVox speech `halfsec models` fetched)")
    bench_asr.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    bench_asr.set_defaults(fn=cmd_bench_asr)
    bench_tts = bench.add_parser("tts", help="agent-style replies through services/tts: first audio, RTF, round-trip WER")
    bench_tts.add_argument("--profile", default="cpu", help="settings profile")
    bench_tts.add_argument("--replies", metavar="FILE", help="one reply per line (default: services/tts/bench_replies.txt)")
    bench_tts.add_argument("--worst", type=int, default=5, help="replies Whisper heard worst to print (default 5)")
    bench_tts.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    bench_tts.set_defaults(fn=cmd_bench_tts)
    report = add("report", cmd_report, "latency percentiles per stage, budget share and worst turns of a run")
    report.add_argument("source", metavar="RUN_DIR_OR_JSONL", help="a turns.jsonl, or a directory searched for them")
    report.add_argument("--json", action="store_true", help="print the summary as JSON instead of tables")
    report.add_argument("--plot", metavar="FILE.png", help="also write FILE-waterfall.png and FILE-histogram.png")
    report.add_argument("--worst", type=int, default=5, help="how many worst turns to list (default 5)")
    dash = add("dashboard", cmd_dashboard, "a local web page following turns.jsonl live, with /metrics")
    dash.add_argument("--run", default="runs", metavar="DIR_OR_JSONL", help="what to follow (default: runs/)")
    dash.add_argument("--port", type=int, help="port (default: latency.dashboard_port, 8110)")
    dash.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    dash.add_argument("--window", type=int, default=100, help="turns in the rolling percentiles (default 100)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("halfsec").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    from services.provision import ProvisionError
    from services.supervisor import ServiceError

    from .worker import WorkerConfigError

    try:
        settings = load_settings(args.profile)
        return args.fn(args, settings)
    except (SettingsError, ProvisionError, ServiceError, WorkerConfigError, FileNotFoundError, ValueError) as exc:
        console.print(f"[red]halfsec: error:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
