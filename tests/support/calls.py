"""Calls as the receiver writes them to Kafka, for tests that start at the worker."""

from __future__ import annotations

import itertools
import subprocess
import sys
from typing import Any

import msgspec

from ops.keys import CreatedKey
from sextant.calls import AnyCall, decode_call
from sextant.settings import Settings
from tests.support.helpers import service_env

_ids = itertools.count()


def stamped(workspace: CreatedKey, **message: Any) -> dict[str, Any]:
    """A message as the receiver writes it to Kafka."""
    message.setdefault("messageId", f"m-{next(_ids)}")
    message.setdefault("receivedAt", "2026-01-01T00:00:00.000Z")
    message.setdefault(
        "sextant", {"workspaceId": workspace.workspace_id, "connectorId": workspace.connector_id}
    )
    return message


def call(workspace: CreatedKey, **message: Any) -> AnyCall:
    return decode_call(msgspec.json.encode(stamped(workspace, **message)))


def worker_process(settings: Settings, port: int = 0) -> subprocess.Popen[bytes]:
    """`sextant work` as its own process, configured only through the environment."""
    env = service_env(settings, WORKER_PORT=str(port), WORKER_BATCH_SIZE="200")
    return subprocess.Popen([sys.executable, "-m", "ops", "work"], env=env)
