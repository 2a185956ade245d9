"""The reference in docs/ covers what the code has, and the repository refers only to
itself: every setting, route and warning kind is documented, and every link resolves."""

from __future__ import annotations

import re
from pathlib import Path

from ops.manage.routes import ROUTES
from tests.support.helpers import ROOT

DOCS = ROOT / "docs"
CODE = ("sextant", "ingest", "worker", "ops")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _documents() -> list[Path]:
    return [*DOCS.glob("*.md"), ROOT / "README.md", ROOT / "deploy" / "RUNBOOK.md"]


def test_every_relative_link_resolves() -> None:
    broken = []
    for doc in _documents():
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", _text(doc)):
            if "://" not in target and not (doc.parent / target).exists():
                broken.append((doc.name, target))
    assert broken == []


def test_nothing_refers_to_files_outside_the_repository() -> None:
    files = [*_documents(), ROOT / "Makefile"]
    files += [p for package in (*CODE, "tests", "bench") for p in (ROOT / package).rglob("*.py")]
    outside = [
        p for p in files if p != Path(__file__) and re.search(r"CONTRACT|\.\./shared", _text(p))
    ]
    assert outside == []


def test_every_setting_is_documented() -> None:
    variables = set(re.findall(r'read\(\s*"([A-Z_]+)"', _text(ROOT / "sextant" / "settings.py")))
    documented = _text(DOCS / "configuration.md")
    assert len(variables) > 20
    assert [v for v in variables if f"`{v}`" not in documented] == []


def test_every_route_is_documented() -> None:
    receiver = set(
        re.findall(
            r'"(/v1/\{t\}|/v1/batch|/v1/import|/segment)"', _text(ROOT / "ingest" / "app.py")
        )
    )
    http_api = _text(DOCS / "http-api.md")
    management = _text(DOCS / "management-api.md")
    assert {"/segment", "/v1/batch", "/v1/import"} <= receiver
    assert [
        r for r in ("/v1/identify", "/v1/batch", "/v1/import", "/segment") if r not in http_api
    ] == []
    assert [r.path for r in ROUTES if r.path not in management] == []


def test_every_warning_kind_is_documented() -> None:
    kinds = set()
    for package in CODE:
        for path in (ROOT / package).rglob("*.py"):
            kinds |= set(re.findall(r'IngestionWarning\(\s*"([a-z_]+)"', _text(path)))
            kinds |= set(re.findall(r'^\s+"([a-z]+_[a-z_]+)",\s*$', _text(path), re.MULTILINE)) & {
                "free_email_blocked", "merge_refused", "identity_cap_reached",
                "timestamp_in_future",
            }  # fmt: skip
    calls = _text(DOCS / "calls.md")
    assert len(kinds) >= 8
    assert [k for k in kinds if f"`{k}`" not in calls] == []


def test_the_reference_answers_what_a_new_user_asks() -> None:
    """Which status a revoked key gets, what happens to a trait whose value does not
    convert, and how to replay a dead letter."""
    http_api, calls = _text(DOCS / "http-api.md"), _text(DOCS / "calls.md")
    operations = _text(DOCS / "operations.md")
    assert re.search(r"revoked\*\* key: \*\*403\*\*", http_api)
    assert "A value that does not convert is left out" in calls
    assert "`attribute_not_converted`" in calls
    assert "## Replaying a dead letter" in operations
    assert "`make dlq-replay`" in operations
