"""`sextant`: one console script for every process and operator command.

The composition root of the command line: it parses arguments, builds the settings
once, calls the operation in `ops` (or runs a process from `ingest` or `worker`), and
prints what it returns.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec
import structlog
from aiokafka.errors import KafkaError

from ops import attributes, keys, workspaces
from ops.migrate import migrate
from sextant.db import Conn, connection
from sextant.errors import AdminError, ConfigError, SextantError
from sextant.logs import configure_logging
from sextant.runtime import run
from sextant.settings import Settings

log = structlog.get_logger()
T = TypeVar("T")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(settings)
        result: int = args.run(settings, args)
        return result
    except ConfigError as e:
        print(f"sextant: configuration error: {e}", file=sys.stderr)
        return 2
    except AdminError as e:
        print(f"sextant: {e}", file=sys.stderr)
        return 1
    except SextantError as e:
        print(f"sextant: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sextant", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(
        name: str,
        run: Callable[[Settings, argparse.Namespace], int],
        help: str,
        into: Any = commands,
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = into.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    command("serve", _serve, "run the HTTP receiver")
    command("work", _work, "run one worker (a consumer-group member)")
    command("migrate", _migrate, "apply schema migrations (safe to run concurrently)")
    command("dev", _dev, "the embedded stack of `make run`, in the foreground; Ctrl-C stops all")

    workspace = commands.add_parser("workspace", help="workspaces").add_subparsers(
        required=True, metavar="ACTION"
    )
    create_ws = command("create", _workspace_create, "create a workspace", workspace)
    create_ws.add_argument("name")
    restore_ws = command(
        "restore",
        _workspace_restore,
        "re-create a workspace lost from Postgres under the id its calls carry",
        workspace,
    )
    restore_ws.add_argument("--id", type=int, required=True, dest="workspace_id")
    restore_ws.add_argument("name")

    key = commands.add_parser("key", help="API keys").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = command("create", _key_create, "create a key (and its workspace and connector)", key)
    create.add_argument("--workspace", required=True)
    create.add_argument("--connector", default=keys.DEFAULT_CONNECTOR)
    create.add_argument(
        "--block-free-email",
        action="store_true",
        default=None,
        help="ignore users whose email is at a free provider",
    )
    create.add_argument(
        "--trusted-domain",
        action="append",
        dest="trusted_domains",
        metavar="HOST",
        help="accept browser calls only from this domain",
    )
    create.add_argument("--shared-secret", help="require X-Signature (HMAC-SHA1) with this secret")
    create.add_argument("--json", action="store_true", help="print the key as JSON")
    listing = command("list", _key_list, "list a workspace's keys (prefixes only)", key)
    listing.add_argument("--workspace", required=True)
    listing.add_argument("--json", action="store_true")
    revoke = command("revoke", _key_revoke, "revoke a key; receivers refuse it within 5 s", key)
    revoke.add_argument("key_or_prefix", metavar="KEY_OR_PREFIX")

    attribute = commands.add_parser("attribute", help="custom attribute types").add_subparsers(
        required=True, metavar="ACTION"
    )
    define = command("define", _attribute_define, "declare a custom attribute's type", attribute)
    define.add_argument("--workspace", required=True)
    define.add_argument("--entity", required=True, choices=attributes.ENTITIES)
    define.add_argument("--event", default="", help="the event name (with --entity event)")
    define.add_argument("--name", required=True)
    define.add_argument("--type", required=True, choices=attributes.ATTRIBUTE_TYPES)

    dlq = commands.add_parser("dlq", help="dead-lettered messages").add_subparsers(
        required=True, metavar="ACTION"
    )
    dlq_list = command("list", _dlq_list, "show dead-lettered messages with their reasons", dlq)
    dlq_list.add_argument("--limit", type=int, default=100)
    dlq_list.add_argument("--json", action="store_true")
    command("replay", _dlq_replay, "put dead letters not yet replayed back on the topic", dlq)

    warnings = command("warnings", _warnings, "ingestion warnings of a workspace, newest first")
    warnings.add_argument("--workspace", required=True)
    warnings.add_argument("--kind", help="only this kind (field_dropped, merge_refused, ...)")
    warnings.add_argument("--since", type=_instant, metavar="ISO_TIME", help="only from then on")
    warnings.add_argument("--limit", type=int, default=100)
    warnings.add_argument("--json", action="store_true", help="one JSON object per line")

    lag = command("lag", _lag, "the workers' consumer-group lag per partition")
    lag.add_argument("--json", action="store_true")
    _replay_arguments(command("replay", _replay, "re-produce a range of the topic (backfill)"))

    topic = commands.add_parser("topic", help="the call and DLQ topics").add_subparsers(
        required=True, metavar="ACTION"
    )
    command("show", _topic_show, "partition counts of the call and DLQ topics", topic)
    grow = command("grow", _topic_grow, "add partitions to the call topic (never removes)", topic)
    grow.add_argument("--partitions", type=int, required=True, help="the new total")
    command("status", _status, "can this process reach Postgres and Kafka? (exit 1 if not)")
    return parser


def _replay_arguments(replay: argparse.ArgumentParser) -> None:
    replay.add_argument("--from-time", type=_instant, metavar="ISO", help="inclusive")
    replay.add_argument("--to-time", type=_instant, metavar="ISO", help="exclusive (default: now)")
    replay.add_argument("--partition", type=int, metavar="P", help="only this partition")
    replay.add_argument("--from-offset", type=int, metavar="A", help="inclusive")
    replay.add_argument("--to-offset", type=int, metavar="B", help="inclusive (default: the end)")
    replay.add_argument("--dry-run", action="store_true", help="count the records, send none")


def _instant(raw: str) -> datetime:
    """An ISO 8601 time; one without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {raw!r}") from e
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _in_database(settings: Settings, work: Callable[[Conn], Awaitable[T]]) -> T:
    """Run `work` on one connection to DATABASE_URL."""

    async def with_connection() -> T:
        async with connection(settings) as conn:
            return await work(conn)

    return run(with_connection())


# --- processes ---------------------------------------------------------------------------


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from ingest.server import serve

    settings.require_database_url()
    settings.require_kafka()
    return run(serve(settings))


def _work(settings: Settings, args: argparse.Namespace) -> int:
    from worker.service import run_worker

    settings.require_database_url()
    settings.require_kafka()
    return run(run_worker(settings))


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    applied = _in_database(settings, migrate)
    print(f"migrations applied: {applied or 'none, schema is current'}")
    return 0


def _dev(settings: Settings, args: argparse.Namespace) -> int:
    from ops.dev import run_dev

    if "LOG_FORMAT" not in os.environ:  # a person is watching this terminal
        settings = dataclasses.replace(settings, log_format="console")
        configure_logging(settings)
    return run_dev(settings)


# --- admin -------------------------------------------------------------------------------


def _workspace_create(settings: Settings, args: argparse.Namespace) -> int:
    workspace_id = _in_database(settings, lambda c: workspaces.create_workspace(c, args.name))
    print(f"workspace {args.name!r} created (id {workspace_id})")
    return 0


def _workspace_restore(settings: Settings, args: argparse.Namespace) -> int:
    _in_database(settings, lambda c: workspaces.restore_workspace(c, args.workspace_id, args.name))
    print(
        f"workspace {args.name!r} restored with id {args.workspace_id}; create its keys "
        "again, then `sextant dlq replay` applies its dead-lettered calls"
    )
    return 0


def _key_create(settings: Settings, args: argparse.Namespace) -> int:
    created = _in_database(
        settings,
        lambda c: keys.create_key(
            c,
            args.workspace,
            args.connector,
            block_free_email=args.block_free_email,
            trusted_domains=args.trusted_domains,
            shared_secret=args.shared_secret,
        ),
    )
    if args.json:
        body = {"workspace": created.workspace, "connector": created.connector}
        print(msgspec.json.encode({**body, "api_key": created.api_key}).decode())
    else:
        print(
            f"workspace  {created.workspace}\nconnector  {created.connector}\n"
            f"api key    {created.api_key}\n"
            "(the key is shown only this once: store it now)"
        )
    return 0


def _key_list(settings: Settings, args: argparse.Namespace) -> int:
    found = _in_database(settings, lambda c: keys.list_keys(c, args.workspace))
    if args.json:
        print(msgspec.json.encode(found).decode())
        return 0
    print(f"{'prefix':<14}{'connector':<16}{'created':<27}revoked")
    for k in found:
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-"
        print(
            f"{k.key_prefix:<14}{k.connector:<16}"
            f"{k.created_at.isoformat(timespec='seconds'):<27}{revoked}"
        )
    return 0


def _key_revoke(settings: Settings, args: argparse.Namespace) -> int:
    prefix = _in_database(settings, lambda c: keys.revoke_key(c, args.key_or_prefix))
    print(f"key {prefix}... revoked; receivers refuse it within {settings.key_refresh_seconds:g} s")
    return 0


def _attribute_define(settings: Settings, args: argparse.Namespace) -> int:
    _in_database(
        settings,
        lambda c: attributes.define(
            c, args.workspace, args.entity, args.event, args.name, args.type
        ),
    )
    scope = f"event {args.event!r}" if args.event else args.entity
    print(f"{scope} attribute {args.name!r} is now {args.type}")
    return 0


def _warnings(settings: Settings, args: argparse.Namespace) -> int:
    from ops.warnings import list_warnings

    found, only_counted = _in_database(
        settings, lambda c: list_warnings(c, args.workspace, args.kind, args.since, args.limit)
    )
    if args.json:
        for w in found:
            print(msgspec.json.encode(w).decode())
        return 0
    if not found:
        print(f"no ingestion warnings for workspace {args.workspace!r}")
    for w in found:
        who = w.user_id or (f"anonymous {w.anonymous_id}" if w.anonymous_id else "-")
        detail = msgspec.json.encode(w.detail).decode()
        print(
            f"{w.created_at.isoformat(timespec='seconds')}  {w.kind:<24} "
            f"{w.message_id or '-'}  {who}  {detail}"
        )
    if only_counted:
        print(f"(and {only_counted} more, counted but not kept: at most 100 a minute per kind)")
    return 0


def _dlq_list(settings: Settings, args: argparse.Namespace) -> int:
    from ops.dlq import list_dead_letters

    letters = run(list_dead_letters(settings, args.limit))
    if args.json:
        for letter in letters:
            print(
                msgspec.json.encode(
                    {
                        "partition": letter.partition,
                        "offset": letter.offset,
                        "dead_at": letter.dead_at,
                        "reason": letter.reason,
                        "source": letter.source,
                        "key": letter.key,
                        "bytes": len(letter.value),
                    }
                ).decode()
            )
        return 0
    if not letters:
        print(f"no dead letters in {settings.kafka_dlq_topic}")
        return 0
    print(f"{'dead at':<27}{'workspace':<11}{'source':<36}reason")
    for letter in letters:
        print(f"{letter.dead_at:<27}{letter.workspace:<11}{letter.source:<36}{letter.reason}")
    return 0


def _dlq_replay(settings: Settings, args: argparse.Namespace) -> int:
    from ops.dlq import replay_dead_letters

    replayed = run(replay_dead_letters(settings))
    print(f"replayed {replayed} dead letter(s) onto {settings.kafka_topic}")
    return 0


# --- Kafka operations --------------------------------------------------------------------


def _lag(settings: Settings, args: argparse.Namespace) -> int:
    from ops.lag import consumer_lag

    group = run(_kafka(consumer_lag(settings)))
    if args.json:
        body = {
            "topic": group.topic,
            "group": group.group,
            "state": group.state,
            "members": group.members,
            "total": group.total,
            "partitions": [
                {"partition": p.partition, "committed": p.committed, "end": p.end, "lag": p.lag}
                for p in group.partitions
            ],
        }
        print(msgspec.json.encode(body).decode())
        return 0
    members = "?" if group.members is None else group.members
    print(f"topic {group.topic}  group {group.group}  ({group.state}, {members} members)")
    print(f"{'partition':>9} {'committed':>12} {'end':>12} {'lag':>10}")
    for p in group.partitions:
        committed = "-" if p.committed is None else str(p.committed)
        print(f"{p.partition:>9} {committed:>12} {p.end:>12} {p.lag:>10}")
    print(f"total lag {group.total}")
    return 0


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from ops.replay import Span, replay
    from worker.retention import KEEP_DAYS

    span = Span(args.from_time, args.to_time, args.partition, args.from_offset, args.to_offset)
    span.check()
    if span.from_time and span.from_time < datetime.now(UTC) - timedelta(days=KEEP_DAYS - 1):
        print(
            f"sextant: note: workers remember messageIds for {KEEP_DAYS} days; calls older "
            "than that are applied again (fields are unharmed; page_views counts may grow)",
            file=sys.stderr,
        )
    done = run(_kafka(replay(settings, span, dry_run=args.dry_run)))
    for partition, (start, stop) in sorted(done.ranges.items()):
        if start < stop:
            print(f"partition {partition}: offsets {start} to {stop - 1}")
    verb = "would replay" if args.dry_run else "replayed"
    print(f"{verb} {done.records} record(s) onto {settings.kafka_topic}")
    return 0


def _topic_show(settings: Settings, args: argparse.Namespace) -> int:
    from ops.topics import partition_counts

    for topic, count in run(_kafka(partition_counts(settings))).items():
        print(f"{topic:<40} " + (f"{count} partition(s)" if count else "missing"))
    return 0


def _topic_grow(settings: Settings, args: argparse.Namespace) -> int:
    from ops.topics import grow_topic

    before = run(_kafka(grow_topic(settings, args.partitions)))
    print(f"{settings.kafka_topic}: {before} -> {args.partitions} partitions")
    return 0


def _status(settings: Settings, args: argparse.Namespace) -> int:
    """One line per service; exit 1 if either is unreachable."""
    from ops.status import service_status

    found = run(service_status(settings))
    for name, _, said in found:
        print(f"{name:<9} {said}")
    return 0 if all(ok for _, ok, _ in found) else 1


async def _kafka(coro: Awaitable[T]) -> T:
    """`coro`, with an unreachable broker reported as one line naming the variable."""
    try:
        return await coro
    except KafkaError as e:
        raise ConfigError(f"KAFKA_BOOTSTRAP_SERVERS: {type(e).__name__}: {e}") from e
