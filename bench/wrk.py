"""wrk, the load generator of the HTTP benchmarks (written in C, so it leaves the CPU to
the server)."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkRun:
    requests: int
    seconds: float
    non_2xx: int
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def wrk(
    url: str,
    body: bytes,
    headers: dict[str, str],
    seconds: float,
    connections: int,
    *,
    delay_ms: float | None = None,
    allow_refusals: bool = False,
) -> WrkRun:
    """POST `body` to url on `connections` connections for `seconds`.

    With `delay_ms`, each connection pauses that long between requests, which holds the
    offered rate near connections x 1000 / (delay_ms + latency): an open-ish load, not
    as much as the server can take.
    """
    with tempfile.TemporaryDirectory() as tmp:
        body_path = Path(tmp) / "body.json"
        body_path.write_bytes(body)
        script = Path(tmp) / "post.lua"
        lines = [
            'wrk.method = "POST"',
            f'local f = io.open("{body_path}", "rb")',
            "wrk.body = f:read('*a')",
            "f:close()",
            *(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()),
        ]
        if delay_ms is not None:
            lines.append(f"function delay() return {delay_ms} end")
        script.write_text("\n".join(lines) + "\n")
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    assert done, out
    non_2xx = int(m[1]) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    if non_2xx and not allow_refusals:
        raise RuntimeError(f"wrk saw {non_2xx} failed responses:\n{out}")
    return WrkRun(
        requests=int(done[1]),
        seconds=float(done[2]) * _UNITS_MS[done[3]] / 1000,
        non_2xx=non_2xx,
        p50_ms=_percentile(out, "50%"),
        p99_ms=_percentile(out, "99%"),
    )


def _percentile(out: str, which: str) -> float:
    found = re.search(rf"^\s*{which}\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
    assert found, out
    return float(found[1]) * _UNITS_MS[found[2]]
