"""Operations tests: the commands, make targets and manifests an operator relies on."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sextant.settings import Settings
from tests.helpers import service_env
from tests.worker.conftest import start_worker  # noqa: F401 - in-process workers here too

ROOT = Path(__file__).resolve().parents[2]
# STAMP emptied: make does not reinstall the package; the suite already runs from the
# installed environment, whose scripts BIN names.
MAKE_VARS = ("STAMP=", f"BIN={Path(sys.executable).parent}")

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def sextant(settings: Settings) -> Run:
    """Run `sextant ARGS...` as an operator would, against this test's services."""

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sextant", *args],
            env={**service_env(settings), **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


@pytest.fixture
def make(settings: Settings) -> Run:
    """Run `make TARGET VAR=...` in the repository against this test's services."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "--no-print-directory", *args, *MAKE_VARS],
            cwd=ROOT,
            env=service_env(settings),
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run
