"""The types of what the conftest fixtures give tests, for their annotations."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Awaitable, Callable

from ops.keys import CreatedKey
from sextant.settings import Settings
from tests.support.services import PausableBroker
from worker.unit_of_work import Outcome

# `apply(*messages)`: calls applied in one batch, as a worker applies them.
Apply = Callable[..., Awaitable[Outcome]]
# `make_key(workspace=None, **connector_options)`
MakeKey = Callable[..., Awaitable[CreatedKey]]
# `sextant(*args, **env)` or `make(*args)`, run as an operator would.
Run = Callable[..., subprocess.CompletedProcess[str]]


@dataclasses.dataclass(frozen=True)
class BrokerReceiver:
    """A receiver whose broker the test controls."""

    url: str
    settings: Settings
    broker: PausableBroker
