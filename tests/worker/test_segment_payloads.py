"""Segment's own example payloads (tests/fixtures/segment, copied from its docs), sent to
`/segment` as its partner delivery sends them: each is accepted and applied, never
dead-lettered, or refused with its reason."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from ingest.intake import is_enabled
from ops.dlq import list_dead_letters
from ops.keys import CreatedKey
from sextant.settings import Settings
from tests.support.helpers import basic_auth, eventually
from tests.support.sender import send
from worker.consumer import Worker

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "segment"
# The Spec's shortest examples leave out the ids a library adds, and Engage's Journeys v1
# examples carry an email only: without a userId or anonymousId they are refused. The
# partner spec's example of the common fields is a track without an event.
NO_IDENTITY = "neither userId nor anonymousId"
REFUSED = {
    "engage_journey_v1_identify.json": NO_IDENTITY,
    "engage_journey_v1_track.json": NO_IDENTITY,
    "spec_group.json": NO_IDENTITY,
    "spec_page.json": NO_IDENTITY,
    "spec_screen.json": NO_IDENTITY,
    "spec_track.json": NO_IDENTITY,
    "partner_common_fields.json": "track has no event",
}


def payloads() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, json.loads(p.read_text())) for p in sorted(FIXTURES.glob("*.json"))]


async def test_every_segment_example_is_applied_or_refused_with_its_reason(
    receiver: str,
    http: aiohttp.ClientSession,
    workspace: CreatedKey,
    settings: Settings,
    db: asyncpg.Connection,
    start_worker: Callable[[], Awaitable[Worker]],
) -> None:
    examples = payloads()
    assert len(examples) > 40
    worker = await start_worker()
    answer = await send(
        http, f"{receiver}/segment", [m for _, m in examples], headers=basic_auth(workspace.api_key)
    )
    refused = {examples[r["index"]][0]: r["message"] for r in answer.body["rejected"]}
    assert answer.status == 200
    assert set(refused) == set(REFUSED)
    assert all(REFUSED[name] in reason for name, reason in refused.items())
    # Examples whose `integrations` turn every destination off (`All: false`) are skipped.
    off = [n for n, m in examples if not is_enabled(m.get("integrations"), "Astrolabe")]
    assert answer.body["skipped"] == len(off) == 1
    assert answer.body["accepted"] == len(examples) - len(REFUSED) - len(off)

    def outcomes() -> Counter[str]:
        found: Counter[str] = Counter()
        for family in worker.metrics.registry.collect():
            for sample in family.samples:
                if sample.name == "sextant_worker_calls_total":
                    found[sample.labels["outcome"]] += int(sample.value)
        return found

    async def all_taken() -> bool:
        return sum(outcomes().values()) >= answer.body["accepted"]

    await eventually(all_taken)
    assert outcomes().get("dead_lettered", 0) == 0
    assert await list_dead_letters(settings) == []
    names = {
        r["name"]
        for r in await db.fetch(
            "SELECT name FROM events WHERE workspace_id = $1", workspace.workspace_id
        )
    }
    # Segment's docs give several examples one messageId: only the first of those applies.
    assert {"Account Created", "Trial Started", "Audience Entered", "Signed Up"} <= names


async def test_segments_deletion_request_is_accepted_as_it_is_sent(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey
) -> None:
    """The partner spec's delete, alone: Go's time format and null context and integrations."""
    delete = json.loads((FIXTURES / "partner_delete.json").read_text())
    functions = json.loads((FIXTURES / "partner_delete_functions.json").read_text())
    for message in (delete, functions):
        answer = await send(
            http, f"{receiver}/segment", message, headers=basic_auth(workspace.api_key)
        )
        assert (answer.status, answer.body["accepted"]) == (200, 1)
