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
from configs.settings import REPO_ROOT

from .http import auth_headers
from .llm.launch import vllm_command, vllm_env
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
        template = settings.llm_chat_template()
        if template is not None and not template.is_file():
            raise ServiceError(f"chat template not found at {template} (llm.chat_template)")
        return ServiceSpec(
            "llm",
            vllm_command(settings),
            f"{settings.llm.url}/health",
            settings.llm.startup_timeout_s,
            vllm_env(settings),
            _usable_cpus(settings.llm.cpu_affinity),
            after=llm_after,
        )

    specs = {
        "asr": lambda: ServiceSpec("asr", python_service("services.asr.server"), f"{settings.asr.url}/health", 60),
        "tts": lambda: ServiceSpec("tts", python_service("services.tts.server"), f"{settings.tts.url}/health", 60),
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


def _affinity(cpus: set[int] | None):  # -> preexec_fn or None
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)  # inherited by every process vLLM spawns


async def is_healthy(url: str, timeout_s: float = 1.0) -> bool:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
            async with http.get(url) as resp:
                return resp.status == 200
    except (TimeoutError, aiohttp.ClientError, OSError):
        return False


class Supervisor:
    """Starts the services, then watches the ones it started: a service that dies is restarted
    after a back-off (1 s, doubling to `max_backoff_s`), with the tail of its log in ours."""

    def __init__(self, specs: list[ServiceSpec], log_dir: Path, *, max_backoff_s: float = 30.0) -> None:
        self.specs = specs
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = {}
        self._max_backoff_s = max_backoff_s
        self._watcher: asyncio.Task[None] | None = None

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _spawn(self, spec: ServiceSpec) -> None:
        with self.log_path(spec.name).open("ab") as out:
            # own session: a Ctrl-C in the terminal reaches us, and we stop the child in order
            self.procs[spec.name] = subprocess.Popen(
                spec.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=spec.env,
                cwd=REPO_ROOT,
                start_new_session=True,
                preexec_fn=_affinity(spec.cpus),
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
        self._watcher = asyncio.create_task(self._watch(), name="supervisor-watch")

    async def _start_one(self, spec: ServiceSpec, after: list[asyncio.Task[None]]) -> None:
        for dep in after:
            await asyncio.shield(dep)  # its failure is its own to report; ours is only to wait
        if await is_healthy(spec.health_url):
            log.info("%s already running at %s: reusing it", spec.name, spec.health_url)
            return
        self._spawn(spec)
        await self._wait_healthy(spec)

    async def _watch(self) -> None:
        owned = [s for s in self.specs if s.name in self.procs]
        backoff = {s.name: 1.0 for s in owned}
        while True:
            await asyncio.sleep(0.5)
            for spec in owned:
                proc = self.procs[spec.name]
                if proc.poll() is None:
                    continue
                log.error(
                    "%s exited with code %s; restarting in %.0fs:\n%s",
                    spec.name,
                    proc.returncode,
                    backoff[spec.name],
                    self.tail(spec.name),
                )
                await asyncio.sleep(backoff[spec.name])
                backoff[spec.name] = min(backoff[spec.name] * 2, self._max_backoff_s)
                self._spawn(spec)
                self.restarts[spec.name] = self.restarts.get(spec.name, 0) + 1

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
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for name, proc in self.procs.items():
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            if proc.poll() is None:
                log.warning("%s did not stop in %.0fs: killing it", name, timeout_s)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def supervisor(settings: Settings, profile: str, names: tuple[str, ...] = ("asr", "tts", "llm")) -> Supervisor:
    """The services `names` of `profile`, logging under the cache directory (use with `async with`)."""
    return Supervisor(service_specs(settings, profile, names), settings.cache_dir / "logs")


@asynccontextmanager
async def serving(
    settings: Settings, profile: str, name: str, path: str, mismatch: Callable[[Any], str | None]
) -> AsyncIterator[str]:
    """services/NAME alone, started or reused, for a bench; yields its URL. A reused one must be
    what the bench asks for: `mismatch` reads its JSON at `path` and says what is wrong, else None."""
    url = getattr(settings, name).url
    async with supervisor(settings, profile, (name,)):
        headers = auth_headers(settings.token())  # vLLM's /v1/models asks for the token when set
        async with aiohttp.ClientSession(headers=headers) as http, http.get(f"{url}{path}") as resp:
            problem = mismatch(await resp.json())
        if problem:
            raise ServiceError(f"the {name} service at {url} {problem}: stop it or pick another {name}.port")
        yield url
