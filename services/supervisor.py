"""Start the model services as processes, wait until each is healthy, stop them cleanly.

A service already answering on its port is reused and left running when we stop (so a developer
can keep `halfsec services` up in one terminal and run `halfsec demo` in another).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from configs import Settings

from .http import auth_headers
from .llm.launch import chat_template_path, vllm_command, vllm_env
from .plan import current_plan

log = logging.getLogger("halfsec.supervisor")


class ServiceError(RuntimeError):
    pass


@dataclass
class ServiceSpec:
    name: str
    argv: list[str]
    health_url: str
    startup_timeout_s: float
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    cpus: set[int] | None = None  # CPU affinity for the process and everything it starts
    nice: int = 0  # added to its niceness (and inherited): lower CPU priority than the others
    after: tuple[str, ...] = ()  # services that must be healthy before this one starts


def service_specs(
    settings: Settings, profile: str, names: tuple[str, ...] = ("asr", "tts", "llm")
) -> list[ServiceSpec]:
    """The specs of the services `names`, in that order (a bench or a test may need one alone)."""

    def python_service(module: str) -> list[str]:
        return [sys.executable, "-m", module, "--profile", profile]

    # Refuse before anything starts: a plan over budget ends in an out-of-memory error minutes
    # later, in whichever service happens to allocate last.
    plan = current_plan(settings)
    if not plan.fits:
        raise ServiceError(f"the VRAM plan for {profile} does not fit: {plan.advice} (see `halfsec plan`)")
    # vLLM on a GPU measures the card at startup and counts what other processes allocate
    # meanwhile against its own share: it starts once Whisper and Kokoro hold their memory.
    llm_after = tuple(n for n in ("asr", "tts") if n in names) if settings.llm.device == "cuda" else ()

    def llm() -> ServiceSpec:
        llm_python = settings.llm_python()
        if not llm_python.exists():
            raise ServiceError(f"vLLM interpreter not found at {llm_python} (llm.python); run `make setup`")
        template = chat_template_path(settings)
        if template is not None and not template.is_file():
            raise ServiceError(f"chat template not found at {template} (llm.chat_template)")
        return ServiceSpec(
            "llm",
            vllm_command(settings),
            f"{settings.llm.local_url}/health",
            settings.llm.startup_timeout_s,
            vllm_env(settings),
            _usable_cpus(settings.llm.cpu_affinity),
            nice=settings.llm.nice,
            after=llm_after,
        )

    specs = {
        "asr": lambda: ServiceSpec(
            "asr", python_service("services.asr.server"), f"{settings.asr.local_url}/health", 60
        ),
        "tts": lambda: ServiceSpec(
            "tts", python_service("services.tts.server"), f"{settings.tts.local_url}/health", 60
        ),
        "llm": llm,
    }
    return [specs[name]() for name in names]


def _usable_cpus(wanted: list[int] | None) -> set[int] | None:
    if wanted is None:
        return None
    usable = set(wanted) & os.sched_getaffinity(0)
    if not usable:
        log.warning("llm.cpu_affinity %s names no usable core here; not confining vLLM", wanted)
        return None
    return usable


def _placement(cpus: set[int] | None, nice: int):  # -> preexec_fn or None
    """Run in the child before it execs: both are inherited by every process it spawns."""
    if cpus is None and not nice:
        return None

    def place() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        if nice:
            os.nice(nice)

    return place


async def is_healthy(url: str, timeout_s: float = 1.0, http: aiohttp.ClientSession | None = None) -> bool:
    """Whether `url` answers 200 within `timeout_s` (a hung service answers nothing)."""
    try:
        if http is None:
            async with aiohttp.ClientSession() as own:
                return await is_healthy(url, timeout_s, own)
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            return resp.status == 200
    except (TimeoutError, aiohttp.ClientError, OSError):
        return False


@dataclass(frozen=True)
class Watch:
    """How the supervisor watches a service it started. A service is restarted when its process
    dies, or when `/health` fails (not 200, or no answer in `probe_timeout_s`) `unhealthy_probes`
    times in a row: a hung service is as useless as a dead one. Restarts back off from
    `first_backoff_s`, doubling to `max_backoff_s`; after `reset_after_s` healthy the back-off
    starts over."""

    probe_every_s: float = 1.0
    first_backoff_s: float = 1.0
    probe_timeout_s: float = 3.0  # a busy 2-core box answers /health in well under a second
    unhealthy_probes: int = 3
    max_backoff_s: float = 30.0
    reset_after_s: float = 60.0


def _kill_group(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGKILL) -> None:
    """Signal the service's whole process group: its leader may be dead while what it started
    (vLLM's engine, a decode worker) still holds the port or the GPU's memory."""
    try:
        os.killpg(proc.pid, sig)  # the group id is the leader's pid (start_new_session)
    except ProcessLookupError:
        pass


class Supervisor:
    """Starts the services, then watches the ones it started, each in its own task (one slow
    restart does not hide another service's death): see `Watch`."""

    def __init__(self, specs: list[ServiceSpec], log_dir: Path, *, watch: Watch | None = None) -> None:
        self.specs = specs
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = {}
        self.watch = watch or Watch()
        self._watchers: list[asyncio.Task[None]] = []

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _spawn(self, spec: ServiceSpec) -> None:
        with self.log_path(spec.name).open("ab") as out:
            # own session: a Ctrl-C in the terminal reaches us, and we stop the child in order
            self.procs[spec.name] = subprocess.Popen(
                spec.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=spec.env,  # and our working directory: relative paths in the settings mean the same to it
                start_new_session=True,
                preexec_fn=_placement(spec.cpus, spec.nice),
            )

    async def start(self) -> None:
        """Start every service (each once those it comes `after` are healthy) and wait until all
        are healthy; on any failure, stop the ones started and raise it."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        names = {s.name for s in self.specs}
        for spec in self.specs:
            if unknown := set(spec.after) - names:
                raise ServiceError(f"{spec.name} starts after {sorted(unknown)}, which are not started here")
        ready: dict[str, asyncio.Task[None]] = {}
        for spec in self.specs:  # in order: a service can only come after one listed before it
            deps = [ready[name] for name in spec.after if name in ready]
            if len(deps) < len(spec.after):
                raise ServiceError(f"{spec.name} must come after {list(spec.after)} in the service list")
            ready[spec.name] = asyncio.create_task(self._start_one(spec, deps), name=f"start-{spec.name}")
        try:
            # the first failure ends the start; the rest are cancelled, not left starting
            done, pending = await asyncio.wait(ready.values(), return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        except BaseException:
            for task in ready.values():
                task.cancel()
            await asyncio.gather(*ready.values(), return_exceptions=True)
            await self.stop()
            raise
        self._watchers = [
            asyncio.create_task(self._watch(spec), name=f"watch-{spec.name}")
            for spec in self.specs
            if spec.name in self.procs
        ]

    async def _start_one(self, spec: ServiceSpec, after: list[asyncio.Task[None]]) -> None:
        for dep in after:
            await asyncio.shield(dep)  # its failure is its own to report; ours is only to wait
        if await is_healthy(spec.health_url):
            log.info("%s already running at %s: reusing it", spec.name, spec.health_url)
            return
        self._spawn(spec)
        await self._wait_healthy(spec)

    async def _watch(self, spec: ServiceSpec) -> None:
        w = self.watch
        backoff, failed, healthy_since = w.first_backoff_s, 0, time.monotonic()
        async with aiohttp.ClientSession() as http:
            while True:
                await asyncio.sleep(w.probe_every_s)
                proc = self.procs[spec.name]
                if proc.poll() is not None:
                    why = f"exited with code {proc.returncode}"
                elif await is_healthy(spec.health_url, w.probe_timeout_s, http):
                    failed = 0
                    if time.monotonic() - healthy_since >= w.reset_after_s:
                        backoff = w.first_backoff_s
                    continue
                else:
                    failed += 1
                    if failed < w.unhealthy_probes:
                        continue
                    why = f"failed {failed} health probes in a row"
                log.error("%s %s; restarting in %.0fs:\n%s", spec.name, why, backoff, self.tail(spec.name))
                await self._terminate(proc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, w.max_backoff_s)
                self._spawn(spec)
                self.restarts[spec.name] = self.restarts.get(spec.name, 0) + 1
                failed = 0
                try:  # a restarting service is not probed as a hung one until it has come up
                    await self._wait_healthy(spec)
                except ServiceError as exc:
                    log.error("%s", exc)  # dead or not up in time: the next probe restarts it
                    failed = w.unhealthy_probes
                healthy_since = time.monotonic()

    async def _terminate(self, proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
        """The process group, SIGTERM then (after `grace_s`) SIGKILL; also what a dead leader left."""
        _kill_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        _kill_group(proc, signal.SIGKILL)
        proc.wait()

    async def _wait_healthy(self, spec: ServiceSpec) -> None:
        deadline = time.monotonic() + spec.startup_timeout_s
        proc = self.procs.get(spec.name)
        while not await is_healthy(spec.health_url):
            if proc is not None and proc.poll() is not None:
                raise ServiceError(
                    f"{spec.name} exited with code {proc.returncode} while starting:\n" + self.tail(spec.name)
                )
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{spec.name} not healthy after {spec.startup_timeout_s:.0f}s:\n" + self.tail(spec.name)
                )
            await asyncio.sleep(0.25)
        log.info("%s healthy", spec.name)

    def tail(self, name: str, lines: int = 15) -> str:
        path = self.log_path(name)
        if not path.exists():
            return "(no log)"
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"  {name}| {line}" for line in text)

    async def stop(self, timeout_s: float = 15.0) -> None:
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        self._watchers = []
        for proc in self.procs.values():
            _kill_group(proc, signal.SIGTERM)  # also what a dead leader left behind
        deadline = time.monotonic() + timeout_s
        for name, proc in self.procs.items():
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            if proc.poll() is None:
                log.warning("%s did not stop in %.0fs: killing it", name, timeout_s)
            _kill_group(proc, signal.SIGKILL)
            proc.wait()
        self.procs.clear()

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def supervisor(settings: Settings, profile: str, names: tuple[str, ...] = ("asr", "tts", "llm")) -> Supervisor:
    """The services `names` of `profile` that this box runs, logging under the cache directory
    (use with `async with`). One whose URL names another box (`asr.url`, `tts.url`,
    `llm.base_url`) is that box's to run: it is left out."""
    here = tuple(name for name in names if getattr(settings, name).elsewhere is None)
    return Supervisor(service_specs(settings, profile, here), settings.cache_dir / "logs")


@asynccontextmanager
async def serving(
    settings: Settings, profile: str, name: str, path: str, mismatch: Callable[[Any], str | None]
) -> AsyncIterator[str]:
    """services/NAME alone, started or reused, for a bench; yields its URL. A reused one must be
    what the bench asks for: `mismatch` reads its JSON at `path` and says what is wrong, else None."""
    address = getattr(settings, name)
    url = address.elsewhere or address.local_url
    if name == "llm" and address.elsewhere:  # the bench adds /v1 itself
        url = url.removesuffix("/v1")
    async with supervisor(settings, profile, (name,)):
        headers = auth_headers(settings.token())  # vLLM's /v1/models asks for the token when set
        async with aiohttp.ClientSession(headers=headers) as http, http.get(f"{url}{path}") as resp:
            problem = mismatch(await resp.json())
        if problem:
            raise ServiceError(f"the {name} service at {url} {problem}: stop it or pick another {name}.port")
        yield url
