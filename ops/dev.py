"""`sextant dev` (`make run`): the whole system on one machine, in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ops.devstack import embedded_services
from ops.keys import create_key
from ops.lag import consumer_lag
from ops.migrate import migrate
from sextant.db import connection
from sextant.errors import ConfigError
from sextant.settings import Settings

DEMO_WORKSPACE = "demo"
WORKERS = 2
# Operators' make targets (`make key`, `make lag`, ...) read the running stack's addresses here.
DEV_ENV_FILE = Path(".sextant/dev.env")


def run_dev(settings: Settings) -> int:
    with embedded_services(settings) as services:
        api_key = asyncio.run(_prepare(services))
        manage_port = services.port + WORKERS + 1
        env = _child_env(services) | {
            "MANAGE_PORT": str(manage_port),
            "MANAGE_TOKEN": services.manage_token or secrets.token_urlsafe(24),
        }
        with _dev_env_file(env), _processes(env, services.port) as procs:
            base = f"http://127.0.0.1:{services.port}"
            _wait_ready(base, procs)
            _wait_for_workers(services, procs)
            manage = f"http://127.0.0.1:{manage_port}"
            print(_banner(base, api_key, manage, env["MANAGE_TOKEN"]), flush=True)
            return _supervise(procs)


async def _prepare(settings: Settings) -> str:
    async with connection(settings) as conn:
        await migrate(conn)
        created = await create_key(conn, DEMO_WORKSPACE)
    return created.api_key


def _child_env(settings: Settings) -> dict[str, str]:
    return settings.child_env(LOG_FORMAT=os.environ.get("LOG_FORMAT", "console"))


@contextlib.contextmanager
def _dev_env_file(env: dict[str, str]) -> Iterator[None]:
    DEV_ENV_FILE.parent.mkdir(exist_ok=True)
    names = (
        "DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_ENABLE_IDEMPOTENCE", "MANAGE_PORT",
        "MANAGE_TOKEN",
    )  # fmt: skip
    DEV_ENV_FILE.write_text("".join(f"export {n}='{env[n]}'\n" for n in names))
    try:
        yield
    finally:
        DEV_ENV_FILE.unlink(missing_ok=True)


def _die_with_parent() -> None:
    # If `sextant dev` itself is killed, its children must not outlive it.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def _processes(env: dict[str, str], port: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The receiver on `port`, workers whose health endpoints follow it, and the
    management API on MANAGE_PORT."""
    commands: list[tuple[str, dict[str, str]]] = [("serve", {})] + [
        ("work", {"WORKER_PORT": str(port + 1 + i)}) for i in range(WORKERS)
    ]
    commands.append(("manage", {}))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for command, extra_env in commands:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "ops", command],
                    env={**env, **extra_env},
                    start_new_session=True,  # Ctrl-C reaches us; we stop them in order
                    preexec_fn=_die_with_parent,
                )
            )
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(base: str, procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise ConfigError("a sextant process exited during start-up; see its log above")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise ConfigError("the receiver did not become ready within a minute")


def _wait_for_workers(
    settings: Settings, procs: list[subprocess.Popen[bytes]], timeout: float = 60
) -> None:
    """Until the workers' group is stable with every worker in it: only then are all
    partitions owned, and a call sent at once is applied at once."""
    print(f"sextant dev: waiting for {WORKERS} workers to own the partitions", file=sys.stderr)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise ConfigError("a sextant process exited during start-up; see its log above")
        group = asyncio.run(consumer_lag(settings))
        if group.state == "Stable" and group.members == WORKERS:
            return
        time.sleep(0.3)
    raise ConfigError("the workers did not own the partitions within a minute")


def _supervise(procs: list[subprocess.Popen[bytes]]) -> int:
    """Wait for Ctrl-C / SIGTERM, or for a child to die; the caller stops the rest."""
    stop = {"signal": 0}

    def on_signal(signum: int, frame: object) -> None:
        stop["signal"] = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop["signal"]:
            for proc in procs:
                if proc.poll() is not None:
                    print(
                        f"sextant dev: process {proc.pid} exited with {proc.returncode}; stopping",
                        file=sys.stderr,
                    )
                    return 1
            time.sleep(0.2)
        print("\nsextant dev: stopping", file=sys.stderr, flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _banner(base: str, api_key: str, manage: str, token: str) -> str:
    body = '{"userId":"user-1","event":"Signed Up","properties":{"plan":"Pro"}}'
    return f"""
Sextant is running: one receiver, {WORKERS} workers and the management API on the
embedded stack.

  receiver    {base}   (/readyz, /metrics, /openapi.json)
  workspace   {DEMO_WORKSPACE}
  API key     {api_key}
  manage API  {manage}   (/manage/openapi.json)
  its token   {token}

Send a call:

  curl -s -u '{api_key}:' -H 'Content-Type: application/json' \\
       -d '{body}' {base}/v1/track

Look at the data: `make psql` in another terminal (DATABASE_URL is in .sextant/dev.env;
`make help` lists what else reaches this stack). See the user it made:

  curl -s -H 'Authorization: Bearer {token}' \\
       {manage}/manage/v1/workspaces/{DEMO_WORKSPACE}/users/user-1

Ctrl-C stops everything.
"""
