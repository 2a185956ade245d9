"""`sextant lag`: how far the workers' consumer group is behind, partition by partition."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from sextant.errors import AdminError
from sextant.kafka import admin_client, log_end_offsets, offline_consumer, topic_partitions
from sextant.settings import Settings


@dataclass(frozen=True, slots=True)
class PartitionLag:
    partition: int
    committed: int | None  # None: the group has committed nothing on this partition yet
    begin: int
    end: int

    @property
    def lag(self) -> int:
        """Records not yet applied; workers start a partition without commits at its beginning."""
        start = self.begin if self.committed is None else max(self.committed, self.begin)
        return max(self.end - start, 0)


@dataclass(frozen=True, slots=True)
class GroupLag:
    topic: str
    group: str
    state: str  # Stable, PreparingRebalance, Empty, Dead, ... or "?" if the broker will not say
    members: int | None
    partitions: list[PartitionLag]

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)


async def consumer_lag(settings: Settings) -> GroupLag:
    """The workers' group lag on the call topic, read without joining the group."""
    async with offline_consumer(settings) as consumer, admin_client(settings) as admin:
        topic, group = settings.kafka_topic, settings.kafka_consumer_group
        partitions = await topic_partitions(consumer, topic)
        if not partitions:
            raise AdminError(f"no topic {topic!r} on the broker (KAFKA_TOPIC)")
        end = await log_end_offsets(settings, partitions)
        return await _read(consumer, admin, topic, group, partitions, end)


async def _read(
    consumer: AIOKafkaConsumer,
    admin: AIOKafkaAdminClient,
    topic: str,
    group: str,
    partitions: list[TopicPartition],
    end: dict[TopicPartition, int],
) -> GroupLag:
    # Naming the partitions: some brokers refuse the "every partition" form of OffsetFetch.
    committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
    begin = await consumer.beginning_offsets(partitions)
    state, members = await _describe(admin, group)
    rows = []
    for tp in partitions:
        offset = committed[tp].offset if tp in committed else -1
        rows.append(PartitionLag(tp.partition, offset if offset >= 0 else None, begin[tp], end[tp]))
    return GroupLag(topic, group, state, members, rows)


async def _describe(admin: AIOKafkaAdminClient, group: str) -> tuple[str, int | None]:
    """The group's state and member count; ("?", None) where the broker does not say."""
    try:
        response = (await admin.describe_consumer_groups([group]))[0]
    except (KafkaError, IndexError):
        return "?", None
    # DescribeGroups v0-v5 all start (error_code, group_id, state, protocol_type, protocol, members)
    for entry in response.groups:
        if entry[1] == group and entry[0] == 0:
            return str(entry[2]), len(entry[5])
    return "?", None
