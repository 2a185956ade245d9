"""Settings from the environment: defaults, validation naming the variable, hidden secrets."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sextant.errors import ConfigError
from sextant.settings import Settings


def test_empty_environment_gives_the_documented_defaults() -> None:
    """With nothing set, settings take the documented defaults."""
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.kafka_bootstrap_servers is None
    assert settings.kafka_topic == "sextant.events"
    assert settings.kafka_dlq_topic == "sextant.events.dlq"
    assert settings.kafka_enable_idempotence is True
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert settings.destination_name == "Astrolabe"
    assert settings.key_refresh_seconds <= 2.0


def test_every_variable_is_read() -> None:
    """Each documented variable sets its field, trimmed and normalised."""
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://sextant:pw@db:5432/sextant",
            "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
            "KAFKA_TOPIC": "calls",
            "KAFKA_ENABLE_IDEMPOTENCE": "false",
            "HOST": "127.0.0.1",
            "PORT": " 9000 ",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "console",
            "DESTINATION_NAME": "Sextant",
            "BROKER_ACK_TIMEOUT": "1.5",
            "KEY_REFRESH_SECONDS": "0.5",
            "FUTURE_TOLERANCE_SECONDS": "60",
            "MAX_ANONYMOUS_IDS_PER_USER": "20",
            "MAX_ATTRIBUTES_PER_ENTITY": "50",
        }
    )
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert settings.kafka_topic == "calls"
    assert settings.kafka_dlq_topic == "calls.dlq"
    assert settings.kafka_enable_idempotence is False
    assert settings.port == 9000
    assert settings.log_level == "warning"
    assert settings.log_format == "console"
    assert settings.destination_name == "Sextant"
    assert settings.broker_ack_timeout == 1.5
    assert settings.key_refresh_seconds == 0.5
    assert settings.future_tolerance_seconds == 60
    assert settings.max_anonymous_ids_per_user == 20
    assert settings.max_attributes_per_entity == 50


def test_blank_variable_counts_as_unset() -> None:
    """A variable set to blanks takes its default rather than failing."""
    assert Settings.from_env({"PORT": "  ", "KAFKA_TOPIC": ""}).port == 8080


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://db/sextant"),
        ("DATABASE_URL", "postgresql://[::1/sextant"),
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost"),
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost:kafka"),
        ("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,,k2:9092"),
        ("KAFKA_TOPIC", "calls and more"),
        ("KAFKA_TOPIC", "t" * 250),
        ("KAFKA_TOPIC", ".."),
        ("KAFKA_DLQ_TOPIC", "dlq/1"),
        ("KAFKA_ENABLE_IDEMPOTENCE", "maybe"),
        ("KAFKA_TOPIC_PARTITIONS", "0"),
        ("KAFKA_REPLICATION_FACTOR", "three"),
        ("PORT", "http"),
        ("PORT", "70000"),
        ("PORT", "-1"),
        ("LOG_LEVEL", "verbose"),
        ("LOG_FORMAT", "xml"),
        ("BROKER_ACK_TIMEOUT", "nan"),
        ("BROKER_ACK_TIMEOUT", "inf"),
        ("BROKER_ACK_TIMEOUT", "10"),
        ("KEY_REFRESH_SECONDS", "5"),
        ("KEY_REFRESH_SECONDS", "0"),
        ("FUTURE_TOLERANCE_SECONDS", "-1"),
        ("MAX_ANONYMOUS_IDS_PER_USER", "0"),
        ("MAX_ATTRIBUTES_PER_ENTITY", "lots"),
        ("PRODUCER_LINGER_MS", "1.5"),
        ("DB_POOL_SIZE", "0"),
    ],
)
def test_bad_value_raises_config_error_naming_the_variable(name: str, value: str) -> None:
    """A malformed or out-of-range value fails at start with a one-line error naming it."""
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({name: value})
    assert raised.value.message.startswith(f"{name}:")
    assert "\n" not in raised.value.message


def test_dlq_topic_must_differ_from_the_topic() -> None:
    """A DLQ topic equal to the call topic would feed poison back in; it is refused."""
    with pytest.raises(ConfigError, match="KAFKA_DLQ_TOPIC"):
        Settings.from_env({"KAFKA_TOPIC": "calls", "KAFKA_DLQ_TOPIC": "calls"})


def test_missing_services_are_named() -> None:
    """Asking for an unset database or broker names the variable to set."""
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings().require_database_url()
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS"):
        Settings().require_kafka()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://sextant:hunter2-secret@db:5432/sextant",
        "postgres://:hunter2-secret@db/sextant",
        "postgresql://sextant:hunter2-secret@/sextant?host=/run/postgresql",
        "postgresql://sextant@db/sextant?sslmode=require&password=hunter2-secret",
        "postgresql:///sextant?host=/tmp&PASSWORD=hunter2-secret",
    ],
)
def test_repr_hides_the_database_password(url: str) -> None:
    """The password, in the user part or as a query parameter, never shows in repr or str."""
    settings = Settings.from_env({"DATABASE_URL": url})
    assert settings.database_url == url
    for text in (repr(settings), str(settings), f"{settings}"):
        assert "hunter2-secret" not in text
        assert "***" in text


def test_repr_keeps_a_url_without_password() -> None:
    """A URL without a password is shown as it is, so operators can read where it points."""
    url = "postgresql://sextant@db:5432/sextant"
    assert repr(url) in repr(Settings(database_url=url))


_password = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1)


@given(first=_password, second=_password, in_query=st.booleans())
def test_repr_does_not_depend_on_the_password(first: str, second: str, in_query: bool) -> None:
    """Any two passwords give the same repr: nothing of the password leaks."""

    def settings(password: str) -> Settings:
        secret = quote(password, safe="")
        if in_query:
            url = f"postgresql://sextant@db/sextant?password={secret}"
        else:
            url = f"postgresql://sextant:{secret}@db/sextant"
        return Settings(database_url=url)

    assert repr(settings(first)) == repr(settings(second))
