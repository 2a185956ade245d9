"""The layout is the architecture: imports run one way, rules stay pure, modules stay small.

Every import is read from the source (those inside functions too), so a shortcut taken
anywhere shows up here.
"""

from __future__ import annotations

import ast
import fnmatch
import tomllib
from collections.abc import Iterator
from pathlib import Path

from tests.support.helpers import ROOT

PACKAGES = ("sextant", "ingest", "worker", "ops")
# Which of our packages each may import; everything else of ours is off limits.
ALLOWED = {
    "sextant": {"sextant"},
    "ingest": {"sextant", "ingest"},
    "worker": {"sextant", "worker"},
    "ops": {"sextant", "ingest", "worker", "ops"},
}
# The rules decide; they neither read nor write.
PURE = "worker.rules"
IO_LIBRARIES = {"asyncpg", "aiokafka", "aiohttp", "asyncio", "socket", "subprocess"}
MAX_LINES = 400


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(p for p in parts if p != "__init__"), path


def imports(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def graph() -> dict[str, set[str]]:
    """Our modules and the modules of ours each imports."""
    ours = dict(modules())
    return {name: {m for m in imports(path) if m in ours} for name, path in ours.items()}


def test_each_package_imports_only_what_is_below_it() -> None:
    """The foundation imports nothing of ours; ingest and worker only the foundation and
    themselves; operator tools anything."""
    wrong = [
        (name, target)
        for name, path in modules()
        for target in imports(path)
        if target.split(".")[0] in PACKAGES
        and target.split(".")[0] not in ALLOWED[name.split(".")[0]]
    ]
    assert wrong == []


def test_there_is_no_import_cycle() -> None:
    edges = graph()
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str], done: set[str]) -> None:
        for target in sorted(edges[node]):
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target], done)
        done.add(node)

    done: set[str] = set()
    for start in sorted(edges):
        if start not in done:
            visit(start, [start], done)
    assert cycles == []


def test_rules_do_no_io_and_know_no_sql() -> None:
    """Nothing under worker/rules reaches Postgres, Kafka, the network or the SQL modules."""
    for name, path in modules():
        if not name.startswith(PURE):
            continue
        reached = imports(path)
        assert not {m.split(".")[0] for m in reached} & IO_LIBRARIES, name
        assert not [m for m in reached if m.startswith(("worker.sql", "worker.unit_of_work"))], name


def test_no_module_of_the_processes_or_the_foundation_is_over_400_lines() -> None:
    long = {
        name: lines
        for name, path in modules()
        if not name.startswith("ops") and (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_wheel_ships_the_four_packages_and_no_benchmark() -> None:
    """setuptools packages what `include` matches: the benchmark folder is not among it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in PACKAGES:
        assert any(fnmatch.fnmatch(package, pattern) for pattern in include), package
    assert not any(fnmatch.fnmatch("bench", pattern) for pattern in include)
    assert (ROOT / "bench").is_dir()
