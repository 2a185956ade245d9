"""Operations tests: the commands, make targets and manifests an operator relies on."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest

from ops.devstack import free_port
from sextant.settings import Settings
from tests.support.fixture_types import Run
from tests.support.helpers import MAKE_VARS, ROOT, service_env
from tests.support.manage import TOKEN, Manage


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


@pytest.fixture
async def manage(settings: Settings, http: aiohttp.ClientSession) -> AsyncIterator[Manage]:
    from ops.manage.app import running

    port = free_port()
    own = dataclasses.replace(settings, manage_token=TOKEN)
    async with running(own, "127.0.0.1", port):
        yield Manage(f"http://127.0.0.1:{port}", http)
