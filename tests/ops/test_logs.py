"""Logs an on-call person can search: JSON lines carrying workspace, message_id, partition
and offset where they apply, and no personal data."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest
import structlog
from structlog.testing import capture_logs

from ops.keys import CreatedKey
from sextant.kafka import ensure_topics, make_producer
from sextant.settings import Settings
from tests.support.calls import stamped
from tests.support.helpers import basic_auth, service_env

PERSON = "jane.doe@example.com"  # personal data: must not reach the logs


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def _poison(settings: Settings, db: asyncpg.Connection) -> tuple[int, str]:
    """An undecodable record and a call for a workspace Postgres lacks, both for PERSON."""
    lost_id = int(await db.fetchval("SELECT coalesce(max(id), 0) + 1000 FROM workspaces"))
    lost = CreatedKey("lost", "default", "", "", lost_id, 1)
    call = stamped(lost, type="identify", userId=PERSON, traits={"email": PERSON})
    await ensure_topics(settings)
    producer = make_producer(settings)
    await producer.start()
    try:
        key = f"{lost_id}:{PERSON}".encode()
        await producer.send_and_wait(settings.kafka_topic, b"{not json " + PERSON.encode(), key=key)
        await producer.send_and_wait(settings.kafka_topic, msgspec.json.encode(call), key=key)
    finally:
        await producer.stop()
    return lost_id, str(call["messageId"])


@pytest.mark.slow
async def test_worker_logs_are_json_with_record_context_and_no_personal_data(
    settings: Settings, db: asyncpg.Connection
) -> None:
    """`sextant work` with LOG_FORMAT=json logs each dead letter as one JSON line with the
    workspace, partition and offset (and message_id once decoded), never the person."""
    lost_id, message_id = await _poison(settings, db)
    env = {**service_env(settings), "LOG_FORMAT": "json", "LOG_LEVEL": "info", "WORKER_PORT": "0"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "ops", "work"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        lines = await asyncio.to_thread(_read_until, worker, "dead_lettered", 2)
    finally:
        worker.terminate()
        rest = worker.communicate(timeout=30)[1]
    events = _json_lines("".join(lines) + rest)
    letters = [e for e in events if e["event"] == "dead_lettered"]
    assert len(letters) == 2
    undecodable, refused = sorted(letters, key=lambda e: e["offset"])
    assert undecodable["workspace"] == str(lost_id)  # from the record's key
    assert "message_id" not in undecodable
    assert refused["workspace"] == lost_id
    assert refused["message_id"] == message_id
    assert {e["partition"] for e in letters} == {undecodable["partition"]}
    assert {e["level"] for e in letters} == {"warning"}
    assert worker.returncode == 0
    assert any(e["event"] == "worker_stopped" for e in events)
    assert PERSON not in "".join(lines) + rest


def _read_until(proc: subprocess.Popen[str], event: str, count: int) -> list[str]:
    """stderr lines until `count` lines hold `event` (or 60 s pass)."""
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while sum(f'"event": "{event}"' in line for line in lines) < count:
        if time.monotonic() > deadline or proc.poll() is not None:
            break
        lines.append(proc.stderr.readline())
    return lines


async def test_receiver_binds_route_and_workspace_to_its_log_lines(
    receiver: str, workspace: CreatedKey, http: aiohttp.ClientSession
) -> None:
    """A request refused with a 5xx is logged with its route and workspace, not its key."""
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        async with http.post(
            f"{receiver}/v1/batch",
            json={"batch": [{"type": "teleport", "userId": PERSON}]},
            headers=basic_auth(workspace.api_key),
        ) as response:
            assert response.status == 501
    refused = [e for e in logs if e["event"] == "request_refused"]
    assert refused == [
        {
            "event": "request_refused",
            "log_level": "warning",
            "route": "/v1/batch",
            "workspace": workspace.workspace_id,
            "status": 501,
            "ms": refused[0]["ms"],
        }
    ]
    assert workspace.api_key not in repr(logs)
    assert PERSON not in repr(logs)


@pytest.mark.slow
async def test_expected_refusals_log_one_line_and_no_traceback(
    settings: Settings, workspace: CreatedKey, http: aiohttp.ClientSession
) -> None:
    """A request the HTTP layer cannot parse, a body that is not JSON, an unknown key and
    a body over the limit: each is answered, and the receiver logs no traceback."""
    from ops.devstack import free_port
    from tests.support.helpers import eventually

    port = free_port()
    env = service_env(settings, PORT=str(port), HOST="127.0.0.1", LOG_LEVEL="info")
    proc = subprocess.Popen([sys.executable, "-m", "ops", "serve"], env=env,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:

        async def ready() -> bool:
            try:
                async with http.get(f"{url}/readyz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(ready, timeout=30)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        garbled = await reader.read(1000)
        writer.close()
        statuses = []
        for body, key in ((b"{not json", workspace.api_key), (b"{}", "sx_unknown"),
                          (b"x" * 600_000, workspace.api_key)):  # fmt: skip
            async with http.post(f"{url}/v1/track", data=body, headers=basic_auth(key)) as r:
                statuses.append(r.status)
    finally:
        proc.terminate()
        _, stderr = await asyncio.to_thread(proc.communicate, timeout=30)
    assert b" 400 " in garbled.split(b"\r\n")[0]
    assert b'"message":"Invalid method encountered"' in garbled
    assert statuses == [400, 401, 413]
    assert "Traceback" not in stderr
    assert all(line.startswith("{") for line in stderr.splitlines() if line.strip())
