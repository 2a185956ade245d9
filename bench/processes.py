"""The processes a benchmark runs: receivers and workers on the benchmark's services."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ops.devstack import free_port
from sextant.settings import Settings


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    return settings.child_env(LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "warning"), **extra)


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, *args], env=env)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_http(url: str, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200")


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


@contextlib.contextmanager
def worker_processes(settings: Settings, count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    ports = [free_port() for _ in range(count)]
    with contextlib.ExitStack() as stack:
        procs = [
            stack.enter_context(
                process(["-m", "ops", "work"], service_env(settings, WORKER_PORT=str(p)))
            )
            for p in ports
        ]
        for p in ports:
            wait_http(f"http://127.0.0.1:{p}/readyz")
        time.sleep(6)  # the group settles: partitions assigned to every member
        yield procs
