"""`halfsec models`, `services`, `plan` and `up`: the models, the services that run them, the
VRAM plan they share, and the LiveKit worker in front of them."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from rich.console import Console

from configs import Settings

from .args import add_command

console = Console(stderr=True)
SERVICES = ("asr", "tts", "llm")  # in the order they start (vLLM on a GPU comes after the others)


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from services.provision import hub_models, model_artifacts, provision

    from ..sim import devset, speech

    if hub_models(settings):
        return _hub_models(settings)
    # the hallucination set (Debian packages) is built by `halfsec bench asr`, which alone uses it
    wanted = [*model_artifacts(settings), *speech.artifacts(settings), *devset.artifacts(settings)]
    built = provision(settings, wanted, console)
    console.print("all models present; nothing to do" if not built else f"built: {', '.join(built)}")
    return 0


def _hub_models(settings: Settings) -> int:
    """A profile of hub models (gpu-24gb): fetch them, and what Kokoro's phonemiser needs, into
    the caches the services read, so no service downloads at call time."""
    from services.hub import fetch_hub_models
    from services.tts.models import prepare_phonemiser

    repos = fetch_hub_models(settings, console)
    if settings.tts.backend == "torch":
        prepare_phonemiser(console)
    console.print(f"hub models present and checked: {', '.join(repos)}")
    return 0


def cmd_services(args: argparse.Namespace, settings: Settings) -> int:
    from services.provision import require
    from services.supervisor import supervisor

    require(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # one service alone is one container's job (deploy/compose.yaml)
        async with supervisor(
            settings, args.profile, tuple(n for n in SERVICES if n in (args.only or SERVICES))
        ) as sup:
            console.print(f"services up ({', '.join(s.name for s in sup.specs)}); Ctrl-C stops them")
            await stop.wait()
            console.print("stopping services...")

    asyncio.run(run())
    return 0


def cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    from services.plan import current_plan, render_plan

    plan = current_plan(settings, budget_gb=args.budget_gb, gpu_gb=args.gpu_gb)
    render_plan(plan, settings, Console())
    if not plan.fits:
        console.print(f"[red]halfsec: plan does not fit:[/] {plan.advice}", highlight=False, soft_wrap=True)
    if args.json:
        print(json.dumps(plan.as_dict()))
    return 0 if plan.fits else 1


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from ..worker import run_worker

    run_worker(args.profile, args.mode, args.log_level, services=not args.no_services, kiosk=not args.no_kiosk)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    add_command(
        sub,
        "models",
        cmd_models,
        "the profile's models: assembled offline (cpu), or fetched from the hub and checked (gpu-24gb)",
    )
    services = add_command(sub, "services", cmd_services, "run the ASR, TTS and LLM services until Ctrl-C")
    services.add_argument(
        "--only", nargs="+", choices=SERVICES, metavar="NAME", help=f"run only these services ({', '.join(SERVICES)})"
    )
    plan = add_command(sub, "plan", cmd_plan, "the VRAM plan: each GPU service's share against the budget")
    plan.add_argument("--budget-gb", type=float, metavar="N", help="VRAM budget in GiB (default: gpu.budget_gb)")
    plan.add_argument(
        "--gpu-gb",
        type=float,
        metavar="M",
        help="the card's size in GiB (default: gpu.gpu_gb, else nvidia-smi, else the budget)",
    )
    plan.add_argument("--json", action="store_true", help="also print the plan as one JSON object, last line")
    up = add_command(
        sub,
        "up",
        cmd_up,
        "run the LiveKit worker, with the model services, the dashboard and the kiosk page beside it "
        "(needs LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET)",
    )
    up.add_argument(
        "mode",
        nargs="?",
        choices=("start", "dev"),
        default="start",
        help="LiveKit's modes: start (JSON logs; SIGTERM drains the calls in progress, up to "
        "worker.drain_timeout_s) or dev (colored logs, exits without draining); default start",
    )
    up.add_argument(
        "--no-services",
        action="store_true",
        help="start no model services (they run elsewhere: `halfsec services`, containers); by default "
        "the worker starts those this box runs, all but any named by asr.url, tts.url, llm.base_url",
    )
    up.add_argument("--no-kiosk", action="store_true", help="do not serve the kiosk page (kiosk.port)")
    up.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"),
        help="the worker's log level (LiveKit's levels; default INFO)",
    )
