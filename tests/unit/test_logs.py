"""Log lines are structured: ours and the libraries' alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_PROGRAM = """
import logging
import structlog
from sextant.logs import configure_logging
from sextant.settings import Settings

configure_logging(Settings.from_env())
structlog.get_logger().warning("ours", n=1)
logging.getLogger("aiokafka.conn").warning("Unable to connect to %s", "broker:9092")
logging.getLogger("aiokafka.conn").info("too chatty to keep")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("aiohttp.server").exception("Error handling request")
"""


def test_library_log_lines_are_json_like_ours() -> None:
    """With LOG_FORMAT=json every stderr line is one JSON object: library warnings carry
    their logger, level, time and message, exceptions their traceback, and library info
    lines stay out."""
    env = {**os.environ, "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    result = subprocess.run(
        [sys.executable, "-c", _PROGRAM], env=env, capture_output=True, text=True, check=True
    )
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["event"] for line in lines] == [
        "ours",
        "Unable to connect to broker:9092",
        "Error handling request",
    ]
    library = lines[1]
    assert (library["logger"], library["level"]) == ("aiokafka.conn", "warning")
    assert library["timestamp"].endswith("Z")
    assert "ZeroDivisionError" in lines[2]["exception"]
