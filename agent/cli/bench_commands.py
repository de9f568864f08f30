"""`halfsec bench asr|llm|tts|calls`: each bench starts (or reuses) what it measures, runs, and
prints its own table (the bench modules own their figures and how they look)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from pathlib import Path

from rich.console import Console

from configs import Settings

from .args import add_profile, concurrency_levels, minutes, positive

log = logging.getLogger("halfsec.bench")
SOAK_TURNS = 20  # the dev-set turns a soak's callers cycle through by default


def cmd_bench_asr(args: argparse.Namespace, settings: Settings) -> int:
    from services.asr.bench import render, run_bench
    from services.provision import provision
    from services.supervisor import serving

    from ..sim import devset, noise

    sets = [] if args.audio_dir else devset.artifacts(settings)
    sets += noise.artifacts(settings) if args.hallucination_s else []
    provision(settings, sets, Console(stderr=True))  # built once, then cached
    audio_dir = Path(args.audio_dir) if args.audio_dir else settings.speech_dir / "dev"
    kinds: dict[str, list[Path]] = {}
    for path, kind in noise.noise_set(settings) if args.hallucination_s else []:
        kinds.setdefault(kind, []).append(path)
    model = settings.asr.model

    def mismatch(health: dict) -> str | None:
        return None if health["model"] == model else f"runs {health['model']!r}, not {model!r}"

    async def run() -> dict:
        async with serving(settings, args.profile, "asr", "/health", mismatch) as url:
            return await run_bench(
                url,
                audio_dir,
                kinds,
                hallucination_s=args.hallucination_s,
                token=settings.token(),
                telephone=args.telephone,
                per_category=args.max_per_category,
            )

    figures = asyncio.run(run())
    render(figures, f"ASR streaming bench: {model}, {figures['files']} files in {audio_dir}", Console())
    if args.json:
        print(json.dumps(figures))
    return 0


def cmd_bench_llm(args: argparse.Namespace, settings: Settings) -> int:
    from services.llm.bench import render, run_bench
    from services.supervisor import serving

    o = settings.llm
    wanted = settings.model_path(o.model)

    def mismatch(models: dict) -> str | None:
        running = models["data"][0].get("root")
        return None if running == wanted else f"runs {running!r}, not {wanted!r}"

    async def run() -> dict:
        async with serving(settings, args.profile, "llm", "/v1/models", mismatch) as url:
            return await run_bench(
                url,
                o.served_model_name,
                o.system_prompt,
                concurrency=args.concurrency,
                turns=args.turns,
                requests=args.requests,
                max_tokens=o.max_tokens,
                temperature=o.temperature,
                token=settings.token(),
                sampling=o.sampling(),
            )

    figures = asyncio.run(run())
    render(figures, f"LLM bench: {o.model}, {o.max_tokens} tokens a reply", Console())
    if args.json:
        print(json.dumps(figures))
    return 0


def cmd_bench_tts(args: argparse.Namespace, settings: Settings) -> int:
    from services.supervisor import serving
    from services.tts.bench import REPLIES_FILE, load_replies, render, run_bench

    from ..plugins.chunking import FirstClauseTokenizer

    replies_file = Path(args.replies) if args.replies else REPLIES_FILE
    replies = load_replies(replies_file)
    backend = settings.tts.backend

    def mismatch(health: dict) -> str | None:
        ours = "pieces" in health and health.get("backend") == backend
        return None if ours else f"is not this version with the {backend!r} backend"

    async def run():  # -> BenchResult
        async with serving(settings, args.profile, "tts", "/health", mismatch) as url:
            # the agent's own chunker: the bench times what a caller would hear
            chunker = FirstClauseTokenizer(
                min_clause_words=settings.tts.first_clause_words, phrase_from_words=settings.tts.first_phrase_words
            ).tokenize
            return await run_bench(url, replies, chunker, settings)

    result = asyncio.run(run())
    title = f"TTS bench: Kokoro {backend}, {result.figures['replies']} replies in {replies_file.name}"
    render(result, title, Console(), worst=args.worst)
    if args.json:
        print(json.dumps(result.figures))
    return 0


def cmd_bench_cores(args: argparse.Namespace, settings: Settings) -> int:
    from services.supervisor import serving
    from services.tts.bench import load_replies

    from ..plugins.chunking import FirstClauseTokenizer
    from ..sim import cores

    chunker = FirstClauseTokenizer(
        min_clause_words=settings.tts.first_clause_words, phrase_from_words=settings.tts.first_phrase_words
    ).tokenize
    firsts = cores.first_chunks(load_replies(Path(args.replies) if args.replies else cores.REPLIES_FILE), chunker)
    o = settings.llm
    if o.elsewhere:
        raise SystemExit("bench cores: llm.base_url names an LLM elsewhere; it measures the vLLM of this box")

    async def run() -> dict:
        async with (
            serving(settings, args.profile, "tts", "/health", lambda _: None) as tts_url,
            serving(settings, args.profile, "llm", "/v1/models", lambda _: None),
        ):
            return await cores.run_bench(
                tts_url,
                o.client_base_url,
                o.served_model_name,
                firsts,
                lease_s=o.hold_for_first_audio_s or 1.2,
                token=settings.token(),
            )

    figures = asyncio.run(run())
    cores.render(figures, Console())
    if args.json:
        print(json.dumps(figures))
    return 0


def _call_audio(args: argparse.Namespace, settings: Settings, count: int) -> list[Path]:
    """The speech files a calls bench says, each checked before any call starts: every file in
    `--audio-dir` in name order; with `--held-out`, the dev-set clips the defaults never take, in
    name order; else `count` turns of 1-10 s from each category of the varied dev set in turn
    (speech the pipeline was not tuned on)."""
    from services.audio import read_pcm16
    from services.provision import require

    from ..sim import devset
    from ..sim.compare import held_out_turns, varied_turns

    if args.audio_dir and getattr(args, "held_out", False):
        raise ValueError("--held-out takes the dev set's clips; --audio-dir names others: give one")
    if not args.audio_dir:
        require(settings, extra=devset.artifacts(settings))
        files = [(path, category) for path, category, _ in devset.dev_set(settings)]
        if getattr(args, "held_out", False):
            return held_out_turns(files, usable=_has_voice)
        return varied_turns(files, count, usable=_has_voice)
    require(settings)
    audio_dir = Path(args.audio_dir)
    audio = sorted(p for p in audio_dir.glob("*") if p.suffix.lower() in (".wav", ".flac", ".mp3", ".ogg"))
    if not audio:
        raise FileNotFoundError(f"no audio files (.wav, .flac, .mp3, .ogg) in {audio_dir}")
    for f in audio:
        read_pcm16(f, 16000)  # a bad file stops the bench here, not as a failed call later
    return audio


def _has_voice(path: Path) -> bool:
    """Whether a dev-set file can be a turn (`load_turn`: Silero hears a voice in it). One that
    cannot failed its whole call (`bench calls --calls 8` took the dev set's "alright")."""
    from ..sim.caller import load_turn

    try:
        load_turn(path)
    except ValueError as exc:
        log.warning("%s; not taken as a turn", exc)
        return False
    return True


def cmd_bench_calls(args: argparse.Namespace, settings: Settings) -> int:
    from services.supervisor import supervisor

    from ..sim.bench import render, run_bench
    from ..sim.scripted import read_replies

    replies = read_replies(args.replies) if args.replies else None
    audio = _call_audio(args, settings, args.calls * args.turns)
    out = Path(args.out or f"runs/bench-calls-{time.strftime('%Y%m%d-%H%M%S')}")

    async def run() -> dict:
        async with supervisor(settings, args.profile):
            return await run_bench(settings, args.concurrency, args.calls, audio, args.turns, out, replies)

    figures = asyncio.run(run())
    title = (
        f"{args.calls} calls of {args.turns} turns at each concurrency, ms "
        f"(target v2v <= {settings.latency.target_ms:.0f})"
    )
    render(figures, title, Console())
    if args.json:
        print(json.dumps(figures))
    return 0 if all(level["failed_turns"] == 0 for level in figures["levels"].values()) else 1


def cmd_bench_soak(args: argparse.Namespace, settings: Settings) -> int:
    from services.supervisor import supervisor

    from ..sim.soak import render, soak

    audio = _call_audio(args, settings, SOAK_TURNS)
    out = Path(args.out or f"runs/bench-soak-{time.strftime('%Y%m%d-%H%M%S')}")

    async def run() -> dict:
        async with supervisor(settings, args.profile):
            return await soak(settings, args.calls, args.minutes, audio, out)

    figures = asyncio.run(run())
    render(figures, Console())
    if args.json:
        print(json.dumps(figures))
    return 0 if figures["failed_turns"] == 0 and not figures["incomplete_logs"] else 1


def cmd_bench_compare(args: argparse.Namespace, settings: Settings) -> int:
    from services.supervisor import supervisor

    from ..sim.compare import render, run_compare
    from ..sim.scripted import read_replies

    replies = read_replies(args.replies) if args.replies else None
    audio = _call_audio(args, settings, args.turns)[: args.turns]
    out = Path(args.out or f"runs/bench-compare-{time.strftime('%Y%m%d-%H%M%S')}")

    async def run() -> dict:
        async with supervisor(settings, args.profile):
            return await run_compare(settings, audio, replies, args.turns_per_call, out)

    figures = asyncio.run(run())
    render(figures, Console(width=160))  # twelve columns
    if args.json:
        print(json.dumps(figures))
    return 0


def add_held_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--held-out",
        action="store_true",
        help="the dev-set clips the default turns never take (up to 12 s, in name order), said in turn: "
        "a check on speech the settings were not chosen on (not with --audio-dir)",
    )


def add_commands(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="benchmarks that print figures").add_subparsers(dest="bench", required=True)

    def add(name: str, fn, help: str) -> argparse.ArgumentParser:  # noqa: A002
        parser = bench.add_parser(name, help=help)
        add_profile(parser)
        parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line, last")
        parser.set_defaults(fn=fn)
        return parser

    asr = add("asr", cmd_bench_asr, "stream speech through services/asr: WER, latency, hallucinations")
    asr.add_argument(
        "--audio-dir",
        metavar="DIR",
        help="audio files with same-stem .txt references, `<category>--<name>` grouped by category "
        "(default: the varied dev set `halfsec models` builds)",
    )
    asr.add_argument(
        "--hallucination-s",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds of each kind of non-speech (room noise, breathing, music) to stream (0: none)",
    )
    asr.add_argument(
        "--telephone",
        action="store_true",
        help="also stream each file through an 8 kHz G.711 mu-law phone line: every WER at 16 kHz beside 8 kHz "
        "(twice the streaming time)",
    )
    asr.add_argument(
        "--max-per-category",
        type=positive,
        metavar="N",
        help="the first N files (in name order) of each category only: a shorter run that still covers them all",
    )
    llm = add("llm", cmd_bench_llm, "stream replies from services/llm: TTFT, first sentence, tokens/s, prefix cache")
    llm.add_argument(
        "--concurrency",
        type=concurrency_levels,
        default=[1, 4, 8],
        metavar="1,4,8",
        help="concurrent calls at each level (default 1,4,8)",
    )
    llm.add_argument(
        "--turns", type=positive, default=8, metavar="N", help="turns of the growing conversation (default 8)"
    )
    llm.add_argument(
        "--requests",
        type=positive,
        default=3,
        metavar="R",
        help="requests each concurrent caller makes per level (default 3)",
    )
    calls = add(
        "calls",
        cmd_bench_calls,
        "N simulated callers at once through the whole stack: v2v and per-stage P50/P95, failed turns",
    )
    calls.add_argument(
        "--concurrency",
        type=concurrency_levels,
        default=[1],
        metavar="N[,N...]",
        help="calls at once; several levels run one after the other (default 1)",
    )
    calls.add_argument("--calls", type=positive, default=4, metavar="M", help="calls at each level (default 4)")
    calls.add_argument("--turns", type=positive, default=3, help="turns per call (default 3)")
    calls.add_argument(
        "--audio-dir",
        metavar="DIR",
        help="speech files, one per turn, in name order (default: turns of 1-10 s from each category of "
        "the varied dev set in turn, as many as the calls say)",
    )
    add_held_out(calls)
    calls.add_argument("--out", metavar="DIR", help="where each call's turns.jsonl and call.wav go")
    calls.add_argument(
        "--replies",
        metavar="FILE",
        help="scripted replies, one a line: line k answers audio file k, at real LLM cost (default: the models' own)",
    )
    compare = add(
        "compare",
        cmd_bench_compare,
        "the stock LiveKit Agents pipeline and halfsec on the same turns, one after the other: v2v P50/P95 "
        "from the audio, LiveKit's per-stage medians, LLM requests per turn, the ratio",
    )
    compare.add_argument(
        "--audio-dir",
        metavar="DIR",
        help="speech files, one per turn, in name order (default: turns of 1-10 s from each category of the "
        "varied dev set in turn)",
    )
    add_held_out(compare)
    compare.add_argument("--turns", type=positive, default=20, metavar="N", help="turns in all (default 20)")
    compare.add_argument(
        "--turns-per-call", type=positive, default=5, metavar="K", help="turns per call, each side (default 5)"
    )
    compare.add_argument(
        "--replies",
        metavar="FILE",
        help="scripted replies, one a line, said in turn by both sides at real LLM cost (default: the models' own)",
    )
    compare.add_argument("--out", metavar="DIR", help="where each side's calls go")
    soak = add("soak", cmd_bench_soak, "callers back to back for M minutes: failed turns, RSS and fd growth")
    soak.add_argument("--calls", type=positive, default=2, metavar="N", help="callers at once (default 2)")
    soak.add_argument("--minutes", type=minutes, default=10.0, metavar="M", help="how long (default 10)")
    soak.add_argument(
        "--audio-dir",
        metavar="DIR",
        help=f"speech files, one per turn, in name order (default: {SOAK_TURNS} turns of 1-10 s from each "
        "category of the varied dev set in turn)",
    )
    soak.add_argument("--out", metavar="DIR", help="where each call's turns.jsonl and call.wav go")
    cores = add(
        "cores",
        cmd_bench_cores,
        "a reply's first audio with vLLM idle, decoding beside Kokoro, and held as the agent holds it",
    )
    cores.add_argument("--replies", metavar="FILE", help="one reply per line (default: agent/sim/compare_replies.txt)")
    tts = add("tts", cmd_bench_tts, "agent-style replies through services/tts: first audio, RTF, round-trip WER")
    tts.add_argument("--replies", metavar="FILE", help="one reply per line (default: services/tts/bench_replies.txt)")
    tts.add_argument("--worst", type=int, default=5, help="replies Whisper heard worst to print (default 5)")
