"""`make run`'s stack (`sextant dev`) tells the truth: its banner appears only once a call
sent at that moment is applied within 2 seconds; `make psql` opens its database."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from ops.dev import WORKERS
from sextant.settings import Settings
from tests.support.fixture_types import Run
from tests.support.helpers import basic_auth, service_env
from tests.support.sender import send

pytestmark = pytest.mark.slow


def _free_port_and_the_next(count: int) -> int:
    """A port that is free with the `count` after it, below the ephemeral range.

    `sextant dev` puts its workers and management API on the ports after PORT. One free
    ephemeral port says nothing of its neighbours, which any outgoing connection of the
    suite may hold for a moment.
    """
    lowest_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(20_000, lowest_ephemeral - count)
        try:
            with contextlib.ExitStack() as held:
                for p in range(port, port + count + 1):
                    held.enter_context(socket.socket()).bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise AssertionError("no run of free ports")


def _read_banner(proc: subprocess.Popen[str], log: Path, timeout: float = 90) -> str:
    """Stdout up to the end of the banner (its Ctrl-C line)."""
    deadline, lines = time.monotonic() + timeout, []
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C stops everything"):
            return "".join(lines)
    raise AssertionError(f"no banner (exit {proc.poll()}):\n{''.join(lines)}\n{log.read_text()}")


async def test_the_banner_comes_when_a_call_is_applied_within_2_seconds(
    settings: Settings, db: asyncpg.Connection, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    port = _free_port_and_the_next(WORKERS + 1)
    env = service_env(settings, PORT=str(port), LOG_LEVEL="warning")
    log = tmp_path / "dev.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ops", "dev"], cwd=tmp_path, env=env, text=True,
            stdout=subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
    try:
        banner = await asyncio.to_thread(_read_banner, proc, log)
        found = re.search(r"API key\s+(\S+)", banner)
        manage = re.search(r"manage API\s+(\S+)", banner)
        assert found
        assert manage
        dev_env = (tmp_path / ".sextant" / "dev.env").read_text()
        message_id = f"dev-{uuid.uuid4().hex}"
        sent_at = time.monotonic()
        answer = await send(
            http, f"http://127.0.0.1:{port}/v1/track",
            {"userId": "dev-user", "event": "Tried", "messageId": message_id},
            headers=basic_auth(found[1]),
        )  # fmt: skip
        applied_in = None
        while time.monotonic() - sent_at < 10:
            if await db.fetchval(
                "SELECT count(*) FROM call_journal WHERE message_id = $1", message_id
            ):
                applied_in = time.monotonic() - sent_at
                break
            await asyncio.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.to_thread(proc.wait, 60)
        assert proc.stdout is not None
        proc.stdout.close()
    assert answer.status == 200
    assert applied_in is not None
    assert applied_in < 2
    assert "MANAGE_TOKEN=" in dev_env
    assert code == 0
    assert not (tmp_path / ".sextant" / "dev.env").exists()


def test_psql_opens_the_database(sextant: Run) -> None:
    result = sextant("psql", "-c", "SELECT count(*) > 0 FROM schema_migrations")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "t"


def test_psql_without_a_database_says_how_to_get_one(sextant: Run) -> None:
    result = sextant("psql", DATABASE_URL="")
    assert result.returncode == 2
    assert "make run" in result.stderr
