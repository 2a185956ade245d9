"""`make fuzz`: schemathesis against a running receiver's `/openapi.json`, for a bounded time.

Starts the embedded stack (or uses DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS), one receiver
and one worker, creates a key, and runs `schemathesis run` with every check for
FUZZ_SECONDS (default 300). Then it waits for the worker to take everything the receiver
accepted and reports the dead letters, which must be none: whatever schemathesis sends,
what is answered 200 is applied. Exit 1 on any schemathesis failure or dead letter.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from ops.devstack import embedded_services, free_port
from ops.dlq import list_dead_letters
from ops.keys import create_key
from ops.lag import consumer_lag
from ops.migrate import migrate
from sextant.db import connection
from sextant.settings import Settings

SECONDS = int(os.environ.get("FUZZ_SECONDS", "300"))


async def _prepare(settings: Settings) -> str:
    async with connection(settings) as conn:
        await migrate(conn)
        return (await create_key(conn, f"fuzz-{uuid.uuid4().hex[:8]}")).api_key


@contextlib.contextmanager
def _process(command: str, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-m", "ops", command], env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/readyz", timeout=1) as response,  # noqa: S310
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise SystemExit("fuzz: the receiver did not become ready")


async def _drained(settings: Settings) -> int:
    """Wait until the worker has committed everything; the lag left after a minute."""
    for _ in range(120):
        lag = await consumer_lag(settings)
        if lag.total == 0:
            return 0
        await asyncio.sleep(0.5)
    return (await consumer_lag(settings)).total


def main() -> int:
    schemathesis = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if schemathesis is None:
        print("fuzz: schemathesis is missing (make fuzz installs it)", file=sys.stderr)
        return 2
    base = Settings.from_env()
    with embedded_services(base) as services:
        settings = services
        key = asyncio.run(_prepare(settings))
        port = free_port()
        env = settings.child_env(PORT=str(port), HOST="127.0.0.1", LOG_LEVEL="warning")
        url = f"http://127.0.0.1:{port}"
        with (
            _process("serve", env),
            _process("work", {**env, "WORKER_PORT": "0"}),
            tempfile.TemporaryDirectory() as reports,
        ):
            _wait_ready(url)
            config = Path(__file__).with_name("schemathesis.toml")
            command = [schemathesis, "--config-file", str(config), "run", f"{url}/openapi.json"]
            command += ["--checks", "all", "--header", f"Authorization: Bearer {key}"]
            command += ["--report-dir", reports, "--warnings", "off"]
            # A batch is judged message by message: a message made invalid is refused by its
            # index and the valid rest accepted (200), so a batch schemathesis made invalid
            # in one message is rightly answered 200. Batches are fuzzed with every other
            # check; tests/worker/test_door_fuzz.py checks their per-index refusals.
            batches = ["--include-path-regex", "^/(v1/batch|v1/import|segment)$"]
            runs = [
                [*command, "--exclude-path-regex", batches[1]],
                [*command, *batches, "--exclude-checks", "negative_data_rejection"],
            ]
            failed = 0
            for each in runs:
                budget = ["--max-time", str(max(SECONDS // len(runs), 1))]
                failed |= subprocess.run([*each, *budget], check=False).returncode
            lag = asyncio.run(_drained(settings))
            letters = asyncio.run(list_dead_letters(settings))
    print(f"fuzz: schemathesis exit {failed}; lag left {lag}; dead letters {len(letters)}")
    for letter in letters[:20]:
        print(f"  dead letter: {letter.reason}")
    return 1 if failed or letters or lag else 0


if __name__ == "__main__":
    sys.exit(main())
