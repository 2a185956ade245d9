"""The dashboard and the alert rules an on-call engineer loads: the rules pass promtool's
check and its unit tests (each alert fires on sample series), every alert links a
runbook entry that exists, and every dashboard query names metrics the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ingest.metrics import IngestMetrics
from tests.support.helpers import ROOT
from worker.metrics import WorkerMetrics

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "sextant-alerts.yaml"
needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool is missing (make test installs it)"
)


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@needs_promtool
def test_the_alert_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


@needs_promtool
def test_every_alert_fires_in_promtools_unit_tests() -> None:
    result = promtool("test", "rules", "sextant-alerts.test.yaml")
    tested = set(
        re.findall(r"alertname: (\w+)", (PROMETHEUS / "sextant-alerts.test.yaml").read_text())
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert tested == set(_alerts())


def _alerts() -> dict[str, dict[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["alert"]: r["annotations"] for g in groups for r in g["rules"]}


def _anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")


def test_every_alert_links_a_runbook_entry() -> None:
    runbook = (ROOT / "deploy" / "RUNBOOK.md").read_text()
    anchors = {_anchor(h) for h in re.findall(r"^## (.+)$", runbook, re.MULTILINE)}
    links = {name: a["runbook_url"] for name, a in _alerts().items()}
    assert len(links) == 7
    for name, url in links.items():
        path, _, anchor = url.partition("#")
        assert path == "RUNBOOK_BASE/deploy/RUNBOOK.md", name
        assert anchor in anchors, (name, anchor)


def _exported() -> set[str]:
    names = set()
    for registry in (IngestMetrics().registry, WorkerMetrics().registry):
        for family in registry.collect():
            names |= {family.name, f"{family.name}_total", f"{family.name}_bucket"}
            names |= {f"{family.name}_sum", f"{family.name}_count"}
    return names


def test_every_dashboard_query_names_an_exported_metric() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "sextant.json").read_text())
    exported = _exported()
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for q in queries for m in re.findall(r"\bsextant_[a-z_]+", q)}
    assert len(dashboard["panels"]) >= 12
    assert used - exported == set()
    assert {
        "sextant_http_requests_total",
        "sextant_broker_ack_seconds_bucket",
        "sextant_worker_consumer_lag",
        "sextant_worker_apply_seconds_bucket",
        "sextant_worker_dead_lettered_total",
        "sextant_ingestion_warnings_total",
    } <= used


def test_every_alert_expression_names_an_exported_metric() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    used = {
        m for g in groups for r in g["rules"] for m in re.findall(r"\bsextant_[a-z_]+", r["expr"])
    }
    assert used
    assert used - _exported() == set()
