"""One frozen, validated settings object, read from the environment once at start."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from sextant.errors import ConfigError

T = TypeVar("T")

LogFormat = Literal["json", "console"]
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_TEN_YEARS = 10 * 365 * 86400  # seconds
_QUERY_PASSWORD = re.compile(r"(?i)(?<![^&])((?:ssl)?password)=[^&]*")


# What an operator command without services most likely means.
_NO_STACK = (
    ", and no `make run` stack is running: start one with `make run`, or set "
    "DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS to reach yours"
)


@dataclass(frozen=True)
class Settings:
    """Everything a process needs to know, validated; `repr` hides credentials."""

    database_url: str | None = None
    kafka_bootstrap_servers: str | None = None
    kafka_topic: str = "sextant.events"
    kafka_dlq_topic: str = "sextant.events.dlq"
    kafka_enable_idempotence: bool = True
    kafka_topic_partitions: int = 12
    kafka_replication_factor: int = 1
    kafka_consumer_group: str = "sextant-workers"
    host: str = "0.0.0.0"  # noqa: S104 - a receiver in a container listens on every interface
    port: int = 8080
    log_level: str = "info"
    log_format: LogFormat = "json"
    destination_name: str = "Astrolabe"
    # A call time later than its receipt by more than this is replaced by the receipt.
    future_tolerance_seconds: int = 600
    # A guard against abuse: anonymous ids past this are not attached to an identified user.
    max_anonymous_ids_per_user: int = 500
    # Attribute definitions per entity (per event name for events); new names past it drop.
    max_attributes_per_entity: int = 1000
    # A workspace's calls per second when it has no rate of its own; 0 is unlimited.
    workspace_calls_per_second: int = 0
    # Receiver pods sharing each workspace's rate (each enforces rate / replicas); 0 counts
    # the receivers that reported to Postgres in the last few seconds.
    receiver_replicas: int = 0
    # Segment gives a destination 5 s; answer 503 well before it gives up on us.
    broker_ack_timeout: float = 3.0
    # Revocation must reach every receiver within 5 s.
    key_refresh_seconds: float = 2.0
    producer_linger_ms: int = 1
    db_pool_size: int = 10
    # Calls per transaction: a batch costs about 20 statements whatever its size. In
    # alternating `make bench` runs 3,000 beat 1,000 by about 15% and 5,000 was no better.
    worker_batch_size: int = 3000
    worker_lanes: int = 2
    worker_port: int = 8081  # the worker's /healthz, /readyz and /metrics
    manage_port: int = 8082  # the management API, never on the receiver's port
    manage_token: str | None = None  # its Bearer token; `sextant manage` needs one

    def __repr__(self) -> str:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["database_url"] = _redact_url(self.database_url)
        fields["manage_token"] = "***" if self.manage_token else None
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in fields.items()) + ")"

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError(f"DATABASE_URL is not set{_NO_STACK}")
        return self.database_url

    def require_kafka(self) -> str:
        if not self.kafka_bootstrap_servers:
            raise ConfigError(f"KAFKA_BOOTSTRAP_SERVERS is not set{_NO_STACK}")
        return self.kafka_bootstrap_servers

    def service_env(self) -> dict[str, str]:
        """The variables that point a child process at these services and topics."""
        return {
            "DATABASE_URL": self.require_database_url(),
            "KAFKA_BOOTSTRAP_SERVERS": self.require_kafka(),
            "KAFKA_ENABLE_IDEMPOTENCE": "true" if self.kafka_enable_idempotence else "false",
            "KAFKA_TOPIC": self.kafka_topic,
            "KAFKA_DLQ_TOPIC": self.kafka_dlq_topic,
            "KAFKA_CONSUMER_GROUP": self.kafka_consumer_group,
            "KAFKA_TOPIC_PARTITIONS": str(self.kafka_topic_partitions),
        }

    def child_env(self, **extra: str) -> dict[str, str]:
        """This process's environment pointed at these services, for a child process."""
        return {**os.environ, **self.service_env(), **extra}

    def with_services(self, database_url: str, kafka_bootstrap_servers: str) -> Settings:
        return dataclasses.replace(
            self, database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap_servers
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default `os.environ`); a bad value raises ConfigError."""
        env = os.environ if env is None else env
        read = _Reader(env)
        topic = read("KAFKA_TOPIC", _topic, cls.kafka_topic)
        dlq_topic = read("KAFKA_DLQ_TOPIC", _topic, f"{topic}.dlq")
        if dlq_topic == topic:
            # The worker would dead-letter poison into the topic it reads, and read it again.
            raise ConfigError(f"KAFKA_DLQ_TOPIC: must differ from KAFKA_TOPIC ({topic!r})")
        return cls(
            database_url=read("DATABASE_URL", _postgres_url, None),
            kafka_bootstrap_servers=read("KAFKA_BOOTSTRAP_SERVERS", _bootstrap, None),
            kafka_topic=topic,
            kafka_dlq_topic=dlq_topic,
            kafka_enable_idempotence=read(
                "KAFKA_ENABLE_IDEMPOTENCE", _bool, cls.kafka_enable_idempotence
            ),
            kafka_topic_partitions=read(
                "KAFKA_TOPIC_PARTITIONS", _int_in(1, 10_000), cls.kafka_topic_partitions
            ),
            kafka_replication_factor=read(
                "KAFKA_REPLICATION_FACTOR", _int_in(1, 100), cls.kafka_replication_factor
            ),
            kafka_consumer_group=read("KAFKA_CONSUMER_GROUP", _nonempty, cls.kafka_consumer_group),
            host=read("HOST", _nonempty, cls.host),
            port=read("PORT", _int_in(0, 65_535), cls.port),
            log_level=read("LOG_LEVEL", _choice(_LOG_LEVELS), cls.log_level),
            log_format=read("LOG_FORMAT", _choice(("json", "console")), cls.log_format),
            destination_name=read("DESTINATION_NAME", _nonempty, cls.destination_name),
            future_tolerance_seconds=read(
                "FUTURE_TOLERANCE_SECONDS",
                _int_in(0, 10 * 365 * 86400),
                cls.future_tolerance_seconds,
            ),
            max_anonymous_ids_per_user=read(
                "MAX_ANONYMOUS_IDS_PER_USER", _int_in(1, 1_000_000), cls.max_anonymous_ids_per_user
            ),
            max_attributes_per_entity=read(
                "MAX_ATTRIBUTES_PER_ENTITY", _int_in(1, 1_000_000), cls.max_attributes_per_entity
            ),
            workspace_calls_per_second=read(
                "WORKSPACE_CALLS_PER_SECOND", _int_in(0, 10_000_000), cls.workspace_calls_per_second
            ),
            receiver_replicas=read("RECEIVER_REPLICAS", _int_in(0, 10_000), cls.receiver_replicas),
            broker_ack_timeout=read(
                "BROKER_ACK_TIMEOUT", _float_in(0.05, 4.5), cls.broker_ack_timeout
            ),
            key_refresh_seconds=read(
                "KEY_REFRESH_SECONDS", _float_in(0.05, 4.0), cls.key_refresh_seconds
            ),
            producer_linger_ms=read("PRODUCER_LINGER_MS", _int_in(0, 1000), cls.producer_linger_ms),
            db_pool_size=read("DB_POOL_SIZE", _int_in(1, 1000), cls.db_pool_size),
            worker_batch_size=read("WORKER_BATCH_SIZE", _int_in(1, 50_000), cls.worker_batch_size),
            worker_lanes=read("WORKER_LANES", _int_in(1, 64), cls.worker_lanes),
            worker_port=read("WORKER_PORT", _int_in(0, 65_535), cls.worker_port),
            manage_port=read("MANAGE_PORT", _int_in(0, 65_535), cls.manage_port),
            manage_token=read("MANAGE_TOKEN", _token, None),
        )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def __call__(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError as e:
            raise ConfigError(f"{name}: {e}") from e


def _nonempty(raw: str) -> str:
    return raw


def _token(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError("must be at least 16 characters (a random secret, not a password)")
    return raw


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}, got {raw!r}")
        return value

    return parse


def _float_in(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not low <= value <= high:
            raise ValueError(f"expected a number from {low} to {high}, got {raw!r}")
        return value

    return parse


def _choice(options: tuple[str, ...]) -> Callable[[str], Any]:
    def parse(raw: str) -> str:
        if raw.lower() not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {raw!r}")
        return raw.lower()

    return parse


def _topic(raw: str) -> str:
    if not _TOPIC.match(raw) or raw in (".", ".."):  # Kafka reserves these two names
        raise ValueError(f"not a valid Kafka topic name: {raw!r}")
    return raw


def _bootstrap(raw: str) -> str:
    for server in raw.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"expected host:port[,host:port...], got {raw!r}")
    return raw


def _postgres_url(raw: str) -> str:
    if urlsplit(raw).scheme not in ("postgres", "postgresql"):
        raise ValueError("expected a postgresql:// URL")
    return raw


def _redact_url(url: str | None) -> str | None:
    """The URL with its password hidden, wherever libpq reads one: the user part or the query
    (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS)."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = _QUERY_PASSWORD.sub(r"\1=***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))
