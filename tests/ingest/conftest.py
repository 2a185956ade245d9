"""Fixtures for the receiver's tests: keys with connector options, and receivers on a broker
of the test's own that the test may freeze or stop."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from ingest.app import running
from ops.devstack import free_port
from ops.keys import CreatedKey, create_key
from sextant.settings import Settings
from tests.support.fixture_types import BrokerReceiver, MakeKey
from tests.support.services import PausableBroker


@pytest.fixture
def make_key(db: asyncpg.Connection) -> MakeKey:
    """Create a key in a workspace of its own (or the one named), with connector options."""

    async def make(workspace: str | None = None, **options: Any) -> CreatedKey:
        return await create_key(db, workspace or f"ws-{uuid.uuid4().hex[:10]}", **options)

    return make


@pytest.fixture
async def broker_receiver(
    settings: Settings, private_broker: PausableBroker
) -> AsyncIterator[BrokerReceiver]:
    """A receiver on `private_broker`, answering 503 after one second without an ack.

    The broker is thawed before the receiver stops, so the producer can flush and close.
    """
    own = dataclasses.replace(
        settings, kafka_bootstrap_servers=private_broker.bootstrap, broker_ack_timeout=1.0
    )
    port = free_port()
    async with running(own, "127.0.0.1", port):
        try:
            yield BrokerReceiver(f"http://127.0.0.1:{port}", own, private_broker)
        finally:
            private_broker.resume()
