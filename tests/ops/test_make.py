"""Every make target the runbook names exists, expands to a real `sextant` command, and,
where this machine can run it, works against the test's Postgres and broker."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest

from ops.cli import _parser
from sextant.kafka import ensure_topics
from sextant.settings import Settings
from tests.support.fixture_types import Run
from tests.support.helpers import MAKE_VARS, ROOT

RUNBOOK = (ROOT / "deploy/RUNBOOK.md").read_text()
# Targets for people working on Sextant itself, not for operators.
DEVELOPER_TARGETS = {"help", "install", "run", "test", "test-fast", "lint", "format", "clean"}
DEVELOPER_TARGETS |= {
    "bench",
    "bench-migrations",
    "fuzz",
    "fuzz-door",
    "profile",
}  # measuring and fuzzing


def _help_targets() -> set[str]:
    out = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    return set(re.findall(r"^  make (\S+)", out, re.M))


def _runbook_commands() -> list[str]:
    """Every operator `make ...` the runbook shows in full (not `[OPTIONAL]` or `...` forms)."""
    spans = re.findall(r"`(make [^`]+)`", RUNBOOK)
    return sorted(
        {
            s
            for s in spans
            if "[" not in s and "..." not in s and s.split()[1] not in DEVELOPER_TARGETS
        }
    )


def test_the_runbook_and_make_help_name_the_same_operator_targets() -> None:
    """Each target the runbook names is in `make help`; each operator target in `make help`
    has a runbook entry."""
    in_help = _help_targets()
    in_runbook = {shlex.split(c)[1] for c in re.findall(r"`(make [^`]+)`", RUNBOOK)}
    assert in_runbook <= in_help, in_runbook - in_help
    assert in_help - DEVELOPER_TARGETS <= in_runbook, in_help - DEVELOPER_TARGETS - in_runbook
    for entry in (
        "Lag rising",
        "DLQ growing",
        "key leaked",
        "Postgres down",
        "Broker down",
        "Adding partitions",
        "A backfill",
    ):
        assert re.search(rf"^## .*{entry}", RUNBOOK, re.M | re.I), entry


@pytest.mark.parametrize("command", _runbook_commands())
def test_each_runbook_command_expands_to_a_real_command(command: str) -> None:
    """`make -n` of each runbook command succeeds and runs a `sextant` command that the
    CLI parses, or docker on a file that exists."""
    result = subprocess.run(
        [*shlex.split(command), "-n", "--no-print-directory", *MAKE_VARS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    recipe = result.stdout.replace("\\\n", " ")
    if "docker" in recipe:
        files = re.findall(r"deploy/\S+", recipe)
        assert files, recipe
        assert all((ROOT / f).is_file() for f in files), recipe
        return
    line = recipe.split("/sextant ", 1)[1].splitlines()[0]
    _parser().parse_args(shlex.split(line))  # exits (fails the test) on an unknown command


async def test_operator_targets_run_against_real_services(settings: Settings, make: Run) -> None:
    """status, migrate, key, keys, revoke, topics, lag, dlq, dlq-replay and a dry-run replay
    all work on the test's services; partitions says in one line why this broker refuses."""
    await ensure_topics(settings)
    status = make("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert re.search(r"^postgres\s+ok, schema version \d+", status.stdout, re.M)
    assert f"{settings.kafka_topic} 4 partition(s)" in status.stdout

    assert make("migrate").stdout.strip() == "migrations applied: none, schema is current"
    created = make("key", "WORKSPACE=ops-drill", "CONNECTOR=web")
    key = re.search(r"api key\s+(sx_\S+)", created.stdout)
    assert key, created.stdout + created.stderr
    prefix = key[1][:12]
    assert prefix in make("keys", "WORKSPACE=ops-drill").stdout
    revoked = make("revoke", f"KEY={prefix}")
    assert f"key {prefix}... revoked" in revoked.stdout, revoked.stderr
    assert re.search(
        rf"^{prefix}\s+web\s+\S+\s+20\d\d-", make("keys", "WORKSPACE=ops-drill").stdout, re.M
    )

    assert re.search(
        rf"^{re.escape(settings.kafka_topic)}\s+4 partition", make("topics").stdout, re.M
    )
    assert "total lag 0" in make("lag").stdout
    assert f"no dead letters in {settings.kafka_dlq_topic}" in make("dlq").stdout
    assert "replayed 0 dead letter(s)" in make("dlq-replay").stdout
    dry = make("replay", "FROM=2026-01-01T00:00:00Z", "DRY_RUN=1")
    assert dry.returncode == 0, dry.stderr
    assert "would replay 0 record(s)" in dry.stdout

    grown = make("partitions", "PARTITIONS=8")  # Tansu has no CreatePartitions
    assert grown.returncode != 0
    assert "sextant: the broker refused to add partitions" in grown.stderr


@pytest.mark.parametrize(
    ("target", "usage"),
    [
        ("key", "usage: make key WORKSPACE=name"),
        ("keys", "usage: make keys WORKSPACE=name"),
        ("revoke", "usage: make revoke KEY="),
        ("replay", "usage: make replay FROM=ISO"),
        ("partitions", "usage: make partitions PARTITIONS="),
        ("workspace-restore", "usage: make workspace-restore WORKSPACE=name ID=id"),
        ("suppress", "usage: make suppress WORKSPACE=name USER_ID=id"),
        ("forget", "usage: make forget WORKSPACE=name USER_ID=id"),
        ("identifier-block", "usage: make identifier-block WORKSPACE=name VALUE=value"),
    ],
)
def test_targets_without_their_variables_print_usage(target: str, usage: str, make: Run) -> None:
    """A target missing its variable prints how to call it and does nothing."""
    result = make(target)
    assert result.returncode != 0
    assert usage in result.stdout


def test_status_names_the_service_it_cannot_reach(sextant: Run) -> None:
    """With Postgres unreachable, `sextant status` says so on its line and exits 1."""
    result = sextant("status", DATABASE_URL="postgresql://sextant@127.0.0.1:1/sextant")
    assert result.returncode == 1
    assert re.search(r"^postgres\s+UNREACHABLE: ", result.stdout, re.M)
    assert re.search(r"^kafka\s+ok", result.stdout, re.M)
