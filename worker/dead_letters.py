"""The dead-letter topic, as the worker writes it: the original record, its key, and headers
naming why and where from (`ops.dlq` lists and replays them)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer

from sextant.calls import AnyCall
from sextant.kafka import Record

REASON_HEADER = "reason"
SOURCE_HEADER = "source"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record for the DLQ, with its reason and, when it decoded, its call."""

    record: Record
    reason: str
    call: AnyCall | None = None


async def send(producer: AIOKafkaProducer, topic: str, letter: DeadLetter) -> None:
    """Send the original bytes with the reason; returns once the broker has them."""
    record = letter.record
    headers = [
        (REASON_HEADER, letter.reason.encode()[:4000]),
        (SOURCE_HEADER, f"{record.topic}/{record.partition}/{record.offset}".encode()),
    ]
    await producer.send_and_wait(topic, record.value, key=record.key, headers=headers)


def refusal(call: AnyCall, e: Exception) -> str:
    """The reason a call cannot be applied, naming the fix when we know it."""
    fkey = e.constraint_name if isinstance(e, asyncpg.ForeignKeyViolationError) else None
    if fkey and fkey.endswith("_workspace_id_fkey"):
        # A workspace row lost (a restore from before it existed, say): once it is
        # restored with the same id, `sextant dlq replay` applies these calls.
        return f"no workspace {call.workspace_id} in the database: {e}"
    if isinstance(e, asyncpg.PostgresError):
        return f"refused by the database: {e}"
    return f"cannot be applied: {type(e).__name__}: {e}"


def record_context(record: Record, call: AnyCall | None) -> dict[str, object]:
    """What a log line about one record carries: where it is and whose it is, never who."""
    context: dict[str, object] = {"partition": record.partition, "offset": record.offset}
    if call is not None:
        context.update(workspace=call.workspace_id, message_id=call.messageId)
    elif record.key:
        # The receiver keys records `workspace:identity`; the identity stays out of logs.
        context["workspace"] = record.key.partition(b":")[0].decode(errors="replace")
    return context
