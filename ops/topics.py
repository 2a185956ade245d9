"""The call and DLQ topics as operators see them: partition counts, and growing the call topic."""

from __future__ import annotations

from aiokafka.admin import NewPartitions
from aiokafka.errors import KafkaError

from sextant.errors import AdminError
from sextant.kafka import admin_client, offline_consumer, topic_partitions
from sextant.settings import Settings


async def partition_counts(settings: Settings) -> dict[str, int]:
    """Partitions of the call topic and the DLQ topic; 0 for a topic that does not exist."""
    async with offline_consumer(settings) as consumer:
        return {
            topic: len(await topic_partitions(consumer, topic))
            for topic in (settings.kafka_topic, settings.kafka_dlq_topic)
        }


async def grow_topic(settings: Settings, partitions: int) -> int:
    """Give the call topic `partitions` partitions in all; returns how many it had.

    Kafka can add partitions but never remove them. New keys then hash elsewhere, which
    is safe here: the worker's last-writer-wins rules do not depend on arrival order.
    """
    before = (await partition_counts(settings))[settings.kafka_topic]
    if before == 0:
        raise AdminError(f"no topic {settings.kafka_topic!r} on the broker (KAFKA_TOPIC)")
    if partitions <= before:
        raise AdminError(f"{settings.kafka_topic} has {before} partitions; Kafka only adds")
    async with admin_client(settings) as admin:
        try:
            await admin.create_partitions({settings.kafka_topic: NewPartitions(partitions)})
        except KafkaError as e:
            raise AdminError(f"the broker refused to add partitions: {e}") from e
    return before
