"""The door's invariant, fuzzed end to end on the real broker and Postgres: a message the
receiver answers 200 for is applied by a worker, with no dead letter; a refused one is
refused with a reason; the receiver never answers 5xx, and no worker stops.

Hostile messages: every JSON type in every field, nesting deep and wide, numbers past a
double, long and odd text (NUL, lone surrogates, bytes that are not UTF-8), odd
timestamps, unknown fields. `FUZZ_EXAMPLES=5000 make test` (or `make fuzz-door`) runs
longer than CI's default.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops.devstack import free_port
from ops.dlq import list_dead_letters
from ops.keys import CreatedKey, create_key
from sextant.db import connection
from sextant.settings import Settings
from tests.support.calls import worker_process
from tests.support.helpers import basic_auth, eventually, read_topic, service_env

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))


# --- JSON text, including what no JSON library writes ------------------------------------


@dataclass(frozen=True)
class Text:
    """JSON text written as it is: numbers past a double, lone surrogates, bad UTF-8."""

    raw: bytes


def encode(value: Any) -> bytes:
    if isinstance(value, Text):
        return value.raw
    if isinstance(value, dict):
        members = (encode(str(k)) + b":" + encode(v) for k, v in value.items())
        return b"{" + b",".join(members) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(encode(v) for v in value) + b"]"
    return json.dumps(value).encode()


odd_text = st.sampled_from(
    [
        Text(b'"\\ud800"'),  # a lone surrogate
        Text(b'"\xff\xfe"'),  # not UTF-8
        Text(b'"a\\u0000b"'),  # NUL
        Text(b"1e400"),
        Text(b"-1e400"),
        Text(b"1" * 400),
        Text(b"1e-400"),
        Text(b'"' + b"x" * 600 + b'"'),
        Text(b'"2020-05-09 23:54:49.209808489 +0000 UTC m=+70366.298768264"'),
        "2026-01-01T00:00:00Z",
        "",
        " ",
        "null",
        "0",
        "😀" * 3,
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    odd_text,
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def deep(levels: int) -> Text:
    return Text(b'{"a":' * levels + b"1" + b"}" * levels)


FIELDS = [
    "type", "userId", "anonymousId", "previousId", "groupId", "event", "messageId", "timestamp",
    "originalTimestamp", "sentAt", "traits", "properties", "context", "integrations", "name",
    "category", "writeKey", "receivedAt", "sextant", "_metadata", "version",
]  # fmt: skip


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """A plausible call, then some of its fields replaced by anything at all."""
    call_type = draw(st.sampled_from(["identify", "track", "page", "screen", "group", "alias",
                                      "delete", "teleport"]))  # fmt: skip
    message: dict[str, Any] = {
        "type": call_type,
        "userId": draw(st.sampled_from(["u1", "u2", "u3"])),
        "anonymousId": draw(st.sampled_from(["a1", "a2", "a3"])),
        "event": "Signed Up",
        "groupId": "g1",
        "previousId": "a9",
        "traits": {"email": "x@initech.com", "plan": "pro"},
        "properties": {"plan": "pro"},
        "context": {"personas": {"computation_class": "audience", "computation_key": "vip"}},
    }
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=5)):
        message[name] = draw(values)
    if draw(st.booleans()):
        where = draw(st.sampled_from(["traits", "properties", "context"]))
        message[where] = {"nested": deep(draw(st.sampled_from([5, 29, 30, 31, 33, 100, 990])))}
    if draw(st.integers(0, 9)) == 0:
        message["traits"] = {("k" * draw(st.sampled_from([255, 256, 4000]))): 1}
    return message


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes, int]:
    batch = draw(st.lists(messages(), min_size=1, max_size=3))
    route = draw(st.sampled_from(["/v1/batch", "/segment"]))
    items = b"[" + b",".join(encode(m) for m in batch) + b"]"
    body = b'{"batch":' + items + b"}" if route == "/v1/batch" else items
    return route, body, len(batch)


# --- the invariant -------------------------------------------------------------------------


@dataclass
class Seen:
    requests: int = 0
    accepted: int = 0
    refused: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def post(url: str, body: bytes, key: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **basic_auth(key)}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def fuzz(receiver: str, key: str, seen: Seen) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests())
    def one(request: tuple[str, bytes, int]) -> None:
        route, body, count = request
        status, answer = post(f"{receiver}{route}", body, key)
        seen.requests += 1
        seen.statuses[status] = seen.statuses.get(status, 0) + 1
        # 501 is the one 5xx allowed: a type we do not support, which Segment does not retry.
        assert status in (200, 400, 413, 501), (status, answer)
        if status == 200:
            rejected = answer["rejected"]
            assert answer["accepted"] + answer["skipped"] + len(rejected) == count
            seen.accepted += answer["accepted"]
        else:
            assert answer["message"]
            rejected = answer.get("rejected", [])
        assert all(isinstance(r["message"], str) and r["message"] for r in rejected)
        seen.refused += len(rejected)

    one()


def test_what_is_answered_200_is_applied_and_nothing_stops_the_service(
    settings: Settings,
) -> None:
    """The receiver and a worker run as their own processes, so hypothesis generates in a
    thread that nothing else shares."""
    workspace = asyncio.run(_workspace(settings))
    port = free_port()
    env = service_env(settings, PORT=str(port), HOST="127.0.0.1")
    receiver = subprocess.Popen([sys.executable, "-m", "ops", "serve"], env=env)
    worker = worker_process(settings)
    try:
        _wait_ready(f"http://127.0.0.1:{port}")
        seen = Seen()
        fuzz(f"http://127.0.0.1:{port}", workspace.api_key, seen)
        print(
            f"fuzzed {seen.requests} requests: {seen.statuses}; calls accepted "
            f"{seen.accepted}, refused {seen.refused}"
        )
        applied, letters = asyncio.run(_outcome(settings, workspace, seen.accepted))
        assert worker.poll() is None
        assert receiver.poll() is None
    finally:
        for proc in (receiver, worker):
            proc.terminate()
            proc.wait(30)
    assert applied == seen.accepted
    assert letters == []
    assert seen.accepted > 0
    assert seen.refused > 0


async def _workspace(settings: Settings) -> CreatedKey:
    async with connection(settings) as conn:
        return await create_key(conn, f"fuzz-{uuid.uuid4().hex[:10]}")


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/readyz", timeout=1) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.1)
    pytest.fail("the receiver did not become ready")


async def _outcome(
    settings: Settings, workspace: CreatedKey, accepted: int
) -> tuple[int, list[Any]]:
    """How many of the accepted calls a worker applied (by messageId), and the dead letters."""
    records = await read_topic(settings, accepted, timeout=30)
    message_ids = {json.loads(r.value)["messageId"] for r in records}
    assert len(records) == accepted
    async with connection(settings) as conn:

        async def all_applied() -> bool:
            applied = await conn.fetchval(
                "SELECT count(*) FROM call_journal WHERE workspace_id = $1 "
                "AND message_id = ANY($2::text[])",
                workspace.workspace_id,
                list(message_ids),
            )
            return bool(applied == len(message_ids))

        await eventually(all_applied, timeout=120)
    return len(records), await list_dead_letters(settings)
