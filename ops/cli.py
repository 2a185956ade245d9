"""`sextant`: one console script for every process and operator command.

The composition root of the command line: it parses arguments and builds the settings
once; `ops.commands` calls the operation (or runs a process) and prints what it returns.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog

from ops import attributes, commands, keys
from sextant.errors import AdminError, ConfigError, SextantError
from sextant.logs import configure_logging
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
    parser = argparse.ArgumentParser(
        prog="sextant",
        description="Sextant, the receiving end of a Segment destination: its processes and "
        "its operator commands, configured from the environment.",
    )
    subcommands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(
        name: str,
        run: Callable[[Settings, argparse.Namespace], int],
        help: str,
        into: Any = subcommands,
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = into.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    command("serve", commands.serve, "run the HTTP receiver")
    command("work", commands.work, "run one worker (a consumer-group member)")
    shell = command("psql", commands.psql, "a psql shell on DATABASE_URL (the running stack's)")
    shell.add_argument("-c", "--command", help="run this SQL and print the result, unaligned")
    command("manage", commands.manage, "run the management API (MANAGE_PORT, MANAGE_TOKEN)")
    command("migrate", commands.migrate, "apply schema migrations (safe to run concurrently)")
    command(
        "dev", commands.dev, "the embedded stack of `make run`, in the foreground; Ctrl-C stops all"
    )

    workspace = subcommands.add_parser("workspace", help="workspaces").add_subparsers(
        required=True, metavar="ACTION"
    )
    create_ws = command("create", commands.workspace_create, "create a workspace", workspace)
    create_ws.add_argument("name")
    restore_ws = command(
        "restore",
        commands.workspace_restore,
        "re-create a workspace lost from Postgres under the id its calls carry",
        workspace,
    )
    restore_ws.add_argument("--id", type=int, required=True, dest="workspace_id")
    restore_ws.add_argument("name")
    limit_ws = command(
        "limit",
        commands.workspace_limit,
        "show or set a workspace's intake rate (429 past it; 0 puts back the default)",
        workspace,
    )
    limit_ws.add_argument("--workspace", required=True)
    limit_ws.add_argument("--calls-per-second", type=int, metavar="N")

    key = subcommands.add_parser("key", help="API keys").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = command(
        "create", commands.key_create, "create a key (and its workspace and connector)", key
    )
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
    listing = command("list", commands.key_list, "list a workspace's keys (prefixes only)", key)
    listing.add_argument("--workspace", required=True)
    listing.add_argument("--json", action="store_true")
    revoke = command(
        "revoke", commands.key_revoke, "revoke a key; receivers refuse it within 5 s", key
    )
    revoke.add_argument("key_or_prefix", metavar="KEY_OR_PREFIX")

    attribute = subcommands.add_parser("attribute", help="custom attribute types").add_subparsers(
        required=True, metavar="ACTION"
    )
    define = command(
        "define", commands.attribute_define, "declare a custom attribute's type", attribute
    )
    define.add_argument("--workspace", required=True)
    define.add_argument("--entity", required=True, choices=attributes.ENTITIES)
    define.add_argument("--event", default="", help="the event name (with --entity event)")
    define.add_argument("--name", required=True)
    define.add_argument("--type", required=True, choices=attributes.ATTRIBUTE_TYPES)

    dlq = subcommands.add_parser("dlq", help="dead-lettered messages").add_subparsers(
        required=True, metavar="ACTION"
    )
    dlq_list = command(
        "list", commands.dlq_list, "show dead-lettered messages with their reasons", dlq
    )
    dlq_list.add_argument("--limit", type=int, default=100)
    dlq_list.add_argument("--json", action="store_true")
    command(
        "replay", commands.dlq_replay, "put dead letters not yet replayed back on the topic", dlq
    )

    suppress = command(
        "suppress", commands.suppress, "skip every call naming a userId (receivers: within 5 s)"
    )
    suppress.add_argument("action", nargs="?", choices=["list"], help="list the suppressed")
    suppress.add_argument("--workspace", required=True)
    suppress.add_argument("--user-id")
    unsuppress = command(
        "unsuppress", commands.unsuppress, "stop skipping a suppressed userId's calls"
    )
    unsuppress.add_argument("--workspace", required=True)
    unsuppress.add_argument("--user-id", required=True)

    identifier = subcommands.add_parser(
        "identifier", help="a workspace's own unusable identifier values"
    ).add_subparsers(required=True, metavar="ACTION")
    for action, handler, what in (
        (
            "block",
            commands.identifier_block,
            "treat a value as no identity (receivers: within 5 s)",
        ),
        ("unblock", commands.identifier_unblock, "accept a value as an identity again"),
    ):
        sub = command(action, handler, what, identifier)
        sub.add_argument("--workspace", required=True)
        sub.add_argument("value", metavar="VALUE")
    command("list", commands.identifier_list, "the workspace's own blocked values", identifier)
    identifier.choices["list"].add_argument("--workspace", required=True)

    user = subcommands.add_parser("user", help="users").add_subparsers(
        required=True, metavar="ACTION"
    )
    forget = command(
        "delete", commands.user_delete, "delete a user, as Segment's deletion would", user
    )
    forget.add_argument("--workspace", required=True)
    forget.add_argument("--user-id", required=True)

    warnings = command(
        "warnings", commands.warnings, "ingestion warnings of a workspace, newest first"
    )
    warnings.add_argument("--workspace", required=True)
    warnings.add_argument("--kind", help="only this kind (field_dropped, merge_refused, ...)")
    warnings.add_argument("--since", type=_instant, metavar="ISO_TIME", help="only from then on")
    warnings.add_argument("--limit", type=int, default=100)
    warnings.add_argument("--json", action="store_true", help="one JSON object per line")

    lag = command("lag", commands.lag, "the workers' consumer-group lag per partition")
    lag.add_argument("--json", action="store_true")
    _replay_arguments(
        command("replay", commands.replay, "re-produce a range of the topic (backfill)")
    )

    topic = subcommands.add_parser("topic", help="the call and DLQ topics").add_subparsers(
        required=True, metavar="ACTION"
    )
    command("show", commands.topic_show, "partition counts of the call and DLQ topics", topic)
    grow = command(
        "grow", commands.topic_grow, "add partitions to the call topic (never removes)", topic
    )
    grow.add_argument("--partitions", type=int, required=True, help="the new total")
    command("status", commands.status, "can this process reach Postgres and Kafka? (exit 1 if not)")
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
