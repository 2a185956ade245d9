"""Operations tests: the commands, make targets and manifests an operator relies on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sextant.settings import Settings
from tests.support.fixture_types import Run
from tests.support.helpers import MAKE_VARS, ROOT, service_env


@pytest.fixture
def sextant(settings: Settings) -> Run:
    """Run `sextant ARGS...` as an operator would, against this test's services."""

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ops", *args],
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
