"""The `halfsec` command: models, services, demo, up, bench, report, dashboard."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

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

    from .sim.call import print_summary, run_call

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
            return await run_call(settings, files, out, barge_in_at_s=args.barge_in_at)

    try:
        result = asyncio.run(run())
    except asyncio.CancelledError:
        console.print("halfsec: demo stopped; services stopped")
        return 143
    print_summary(result, settings, Console())
    return 0 if result.turns else 1


def cmd_measure(args: argparse.Namespace, settings: Settings) -> int:
    from rich.table import Table

    from .sim.voice import measure_call

    turns = measure_call(args.call_wav, args.sources)
    table = Table(title=f"v2v measured on {args.call_wav} (Silero end of voice -> agent above -40 dBFS), ms")
    for col in ("turn", "source", "voice ends at s", "v2v", "agent stopped after caller began"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for i, t in enumerate(turns, 1):
        table.add_row(str(i), Path(t.source).name, *("-" if v is None else f"{v:.{d}f}" for v, d in (
            (t.voice_end_s, 3), (t.v2v_ms, 1), (t.agent_stopped_ms, 1))))  # fmt: skip
    Console().print(table)
    if args.json:
        print(json.dumps([vars(t) for t in turns]))
    return 0 if all(t.v2v_ms is not None for t in turns) else 1


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


def cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    from rich.table import Table

    from services.plan import current_plan, spare_calls

    plan = current_plan(settings, budget_gb=args.budget_gb, gpu_gb=args.gpu_gb)
    out = Console()
    if not plan.uses_gpu:
        out.print(f"VRAM plan for {plan.profile}: {plan.note}")
    else:
        table = Table(title=f"VRAM plan: {plan.profile}, {plan.budget_gb:g} GiB budget on a {plan.gpu_gb:g} GiB card")
        table.add_column("component")
        table.add_column("GiB", justify="right")
        table.add_column("from")
        for c in plan.components:
            table.add_row(c.name, f"{c.gib:.2f}", c.source)
        table.add_section()
        table.add_row("total", f"{plan.total_gb:.2f}", "fits" if plan.fits else "[red]over budget[/]")
        table.add_row("budget", f"{plan.budget_gb:.2f}", f"unplanned {plan.budget_gb - plan.total_gb:.2f}")
        out.print(table)
        if plan.calls:
            out.print(f"KV cache: {plan.calls} concurrent calls of {plan.context_tokens} tokens"
                      + (f" (the unplanned rest would hold {n} more)" if (n := spare_calls(settings, plan)) else ""))
        if plan.fits and plan.vllm_gpu_memory_utilization is not None:
            out.print(f"vLLM --gpu-memory-utilization {plan.vllm_gpu_memory_utilization:g} "
                      f"(a fraction of the {plan.gpu_gb:g} GiB card)")
        if plan.note:
            out.print(plan.note)
    if not plan.fits:
        console.print(f"[red]halfsec: plan does not fit:[/] {plan.advice}", highlight=False, soft_wrap=True)
    if args.json:
        print(json.dumps(plan.as_dict()))
    return 0 if plan.fits else 1


def _print_figures(title: str, figures: dict) -> None:
    """A bench's figures as a two-column table (WERs as percentages)."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:.1%}" if "wer" in key else str(value))
    Console().print(table)


@asynccontextmanager
async def _bench_service(settings: Settings, profile: str, name: str, path: str,
                         mismatch: Callable[[Any], str | None]) -> AsyncIterator[str]:  # fmt: skip
    """services/NAME alone for a bench, started or reused; a reused one must be what the bench
    asks for (`mismatch` reads its JSON at `path` and says what is wrong, else None)."""
    import aiohttp

    from services.supervisor import ServiceError, Supervisor, service_specs

    url = getattr(settings, name).url
    async with Supervisor(service_specs(settings, profile, (name,)), settings.cache_dir / "logs"):
        async with aiohttp.ClientSession() as http, http.get(f"{url}{path}") as resp:
            problem = mismatch(await resp.json())
        if problem:
            raise ServiceError(f"the {name} service at {url} {problem}: stop it or pick another {name}.port")
        yield url


def cmd_bench_asr(args: argparse.Namespace, settings: Settings) -> int:
    from services.asr.bench import run_bench

    audio_dir = Path(args.audio_dir) if args.audio_dir else settings.speech_dir / "librivox"
    model = settings.asr.model

    async def run() -> dict[str, float | int]:
        def mismatch(health: dict) -> str | None:
            return None if health["model"] == model else f"runs {health['model']!r}, not {model!r}"

        async with _bench_service(settings, args.profile, "asr", "/health", mismatch) as url:
            return await run_bench(url, audio_dir)

    figures = asyncio.run(run())
    _print_figures(f"ASR streaming bench: {settings.asr.model}, {figures['files']} files in {audio_dir}", figures)
    if args.json:
        print(json.dumps(figures))
    return 0


def cmd_bench_llm(args: argparse.Namespace, settings: Settings) -> int:
    from rich.table import Table

    from services.llm.bench import run_bench

    o = settings.llm
    wanted = settings.model_path(o.model)

    async def run() -> dict:
        def mismatch(models: dict) -> str | None:
            running = models["data"][0].get("root")
            return None if running == wanted else f"runs {running!r}, not {wanted!r}"

        async with _bench_service(settings, args.profile, "llm", "/v1/models", mismatch) as url:
            return await run_bench(url, o.served_model_name, o.system_prompt, concurrency=args.concurrency,
                                   turns=args.turns, requests=args.requests, max_tokens=o.max_tokens,
                                   temperature=o.temperature)  # fmt: skip

    figures = asyncio.run(run())
    out = Console()
    table = Table(title=f"LLM bench: {o.model}, {o.max_tokens} tokens a reply")
    for name in ("calls", "requests", "TTFT P50 ms", "TTFT P95 ms", "1st sentence P50 ms",
                 "1st sentence P95 ms", "tok/s per stream", "tok/s total"):  # fmt: skip
        table.add_column(name, justify="right")
    for level in figures["levels"].values():
        table.add_row(*(str(level[k]) for k in (
            "concurrency", "requests", "ttft_ms_p50", "ttft_ms_p95", "first_sentence_ms_p50",
            "first_sentence_ms_p95", "tokens_per_s_per_stream", "tokens_per_s")))  # fmt: skip
    out.print(table)
    out.print(f"one conversation, {figures['turns']} turns: TTFT turn 1 {figures['ttft_turn1_ms']} ms "
              f"({figures['prompt_tokens_turn1']} prompt tokens), turn {figures['turns']} "
              f"{figures['ttft_turnN_ms']} ms ({figures['prompt_tokens_turnN']} prompt tokens"
              + (f", {figures['cached_tokens_turnN']} cached)" if figures["cached_tokens_turnN"] is not None else ")"),
              highlight=False)  # fmt: skip
    if args.json:
        print(json.dumps(figures))
    return 0


def cmd_bench_tts(args: argparse.Namespace, settings: Settings) -> int:
    from services.tts.bench import REPLIES_FILE, load_replies, run_bench

    from .plugins.chunking import FirstClauseTokenizer

    replies_file = Path(args.replies) if args.replies else REPLIES_FILE
    replies = load_replies(replies_file)
    backend = settings.tts.backend

    async def run():  # -> BenchResult
        def mismatch(health: dict) -> str | None:
            ours = "pieces" in health and health.get("backend") == backend
            return None if ours else f"is not this version with the {backend!r} backend"

        async with _bench_service(settings, args.profile, "tts", "/health", mismatch) as url:
            # the agent's own chunker: the bench times what a caller would hear
            chunker = FirstClauseTokenizer(min_clause_words=settings.tts.first_clause_words).tokenize
            return await run_bench(url, replies, chunker, settings)

    result = asyncio.run(run())
    figures = result.figures
    _print_figures(f"TTS bench: Kokoro {settings.tts.backend}, {figures['replies']} replies in {replies_file.name}",
                   figures)  # fmt: skip
    worst = sorted(result.heard, key=lambda h: h[2], reverse=True)[: args.worst]
    for text, heard, reply_wer in (w for w in worst if w[2] > 0):
        Console().print(f"WER {reply_wer:.0%}: {text!r}\n       heard: {heard!r}", highlight=False, soft_wrap=True)
    if args.json:
        print(json.dumps(figures))
    return 0


def cmd_bench_calls(args: argparse.Namespace, settings: Settings) -> int:
    from rich.table import Table

    from services.provision import require

    from .sim.bench import run_bench
    from .sim.caller import load_utterance

    require(settings)
    audio_dir = Path(args.audio_dir) if args.audio_dir else settings.speech_dir / "librivox"
    audio = sorted(p for p in audio_dir.glob("*") if p.suffix.lower() in (".wav", ".flac", ".mp3", ".ogg"))
    if not audio:
        raise FileNotFoundError(f"no audio files (.wav, .flac, .mp3, .ogg) in {audio_dir}")
    for f in audio:
        load_utterance(f)  # a bad file stops the bench here, not as a failed call later
    out = Path(args.out or f"runs/bench-calls-{time.strftime('%Y%m%d-%H%M%S')}")

    async def run() -> dict:
        async with _supervisor(settings, args.profile):
            return await run_bench(settings, args.concurrency, args.calls, audio, args.turns, out)

    figures = asyncio.run(run())
    table = Table(title=f"{args.calls} calls of {args.turns} turns at each concurrency, ms "
                        f"(target v2v <= {settings.latency.target_ms:.0f})")
    stages = list(figures["stages"])
    for name in ("calls at once", "turns", "failed", "invalid records", "v2v P50", "v2v P95", "heard P50/P95",
                 *(f"{s} P50/P95" for s in stages), "worst gap"):
        table.add_column(name, justify="right")
    def pair(level: dict, stage: str) -> str:
        return "/".join("-" if v is None else f"{v:.0f}" for v in level["stages"][stage].values())

    for level in figures["levels"].values():
        table.add_row(str(level["concurrency"]), str(level["turns"]), str(level["failed_turns"]),
                      str(level["invalid_records"]), f"{level['v2v_p50_ms']}", f"{level['v2v_p95_ms']}",
                      f"{level['v2v_audio_p50_ms']}/{level['v2v_audio_p95_ms']}", *(pair(level, s) for s in stages),
                      f"{level['v2v_vs_audio_max_ms']}")  # fmt: skip
    Console().print(table)
    for level in figures["levels"].values():
        for u in level["unanswered"]:
            Console().print(f"c={level['concurrency']} call {u['call']} turn {u['turn']} ({u['file']}): {u['why']} "
                            "(counted at the reply timeout in v2v)" if u["why"] != "fallback" else
                            f"c={level['concurrency']} call {u['call']} turn {u['turn']} ({u['file']}): fallback",
                            highlight=False)  # fmt: skip
    Console().print(f"tracing: {figures['trace_ms_per_turn'] * 1000:.0f} us a turn on the event loop; the "
                    f"turn log's flush+fsync {figures['turnlog_write_ms']:.2f} ms, after the reply. "
                    f"Turn records under {out}", highlight=False, soft_wrap=True)
    if args.json:
        print(json.dumps(figures))
    return 0 if all(level["failed_turns"] == 0 for level in figures["levels"].values()) else 1


def _concurrency_levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"expected positive whole numbers separated by commas, like 1,4,8 (got {text!r})")
    return levels


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number (got {text!r})")
    return int(text)


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
    demo.add_argument("--barge-in-at", type=float, metavar="SECONDS",
                      help="the caller starts each next utterance this long after the agent starts speaking")
    measure = add("measure", cmd_measure, "per-turn v2v measured on a call recording (call.wav) alone")
    measure.add_argument("call_wav", metavar="CALL_WAV", help="a call's loopback recording (caller left, agent right)")
    measure.add_argument("--sources", nargs="+", required=True, metavar="FILE",
                         help="the speech files the caller said, in order")
    measure.add_argument("--json", action="store_true", help="also print the turns as one JSON line")
    add("up", cmd_up, "run the LiveKit worker (needs LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET)")
    plan = add("plan", cmd_plan, "the VRAM plan: each GPU service's share against the budget")
    plan.add_argument("--budget-gb", type=float, metavar="N", help="VRAM budget in GiB (default: gpu.budget_gb)")
    plan.add_argument("--gpu-gb", type=float, metavar="M",
                      help="the card's size in GiB (default: gpu.gpu_gb, else nvidia-smi, else the budget)")
    plan.add_argument("--json", action="store_true", help="also print the plan as one JSON object, last line")
    bench = sub.add_parser("bench", help="benchmarks that print figures").add_subparsers(dest="bench", required=True)
    bench_asr = bench.add_parser("asr", help="stream speech through services/asr: WER, latency, hallucinations")
    bench_asr.add_argument("--profile", default="cpu", help="settings profile")
    bench_asr.add_argument("--audio-dir", metavar="DIR", help="audio files with same-stem .txt references "
                           "(default: the LibriVox speech `halfsec models` fetched)")
    bench_asr.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    bench_asr.set_defaults(fn=cmd_bench_asr)
    bench_llm = bench.add_parser("llm", help="stream replies from services/llm: TTFT, first sentence, tokens/s, prefix cache")
    bench_llm.add_argument("--profile", default="cpu", help="settings profile")
    bench_llm.add_argument("--concurrency", type=_concurrency_levels, default=[1, 4, 8], metavar="1,4,8",
                           help="concurrent calls at each level (default 1,4,8)")
    bench_llm.add_argument("--turns", type=_positive, default=8, metavar="N",
                           help="turns of the growing conversation (default 8)")
    bench_llm.add_argument("--requests", type=_positive, default=3, metavar="R",
                           help="requests each concurrent caller makes per level (default 3)")
    bench_llm.add_argument("--json", action="store_true", help="also print the figures as one JSON line, last")
    bench_llm.set_defaults(fn=cmd_bench_llm)
    bench_calls = bench.add_parser("calls", help="N simulated callers at once through the whole stack: v2v and "
                                   "per-stage P50/P95, failed turns")
    bench_calls.add_argument("--profile", default="cpu", help="settings profile")
    bench_calls.add_argument("--concurrency", type=_concurrency_levels, default=[1], metavar="N[,N...]",
                             help="calls at once; several levels run one after the other (default 1)")
    bench_calls.add_argument("--calls", type=_positive, default=4, metavar="M", help="calls at each level (default 4)")
    bench_calls.add_argument("--turns", type=_positive, default=3, help="turns per call (default 3)")
    bench_calls.add_argument("--audio-dir", metavar="DIR", help="speech files, one per turn "
                             "(default: the LibriVox speech `halfsec models` fetched)")
    bench_calls.add_argument("--out", metavar="DIR", help="where each call's turns.jsonl and call.wav go")
    bench_calls.add_argument("--json", action="store_true", help="also print the figures as one JSON line, last")
    bench_calls.set_defaults(fn=cmd_bench_calls)
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
