"""`make profile`: where the receiver spends its time, sampled with py-spy while wrk sends
Segment's single calls to `/segment` (or 100-call batches: `python -m bench.profile batch`).

Prints the functions with the most samples of their own and in total, and leaves the
folded stacks in `.sextant/profile-SHAPE.txt` (for flamegraph tools or speedscope).
"""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
from pathlib import Path

from bench.__main__ import phase
from bench.processes import process, service_env, wait_http
from bench.receiver import basic_auth, bodies
from bench.wrk import wrk
from ops.devstack import free_port
from sextant.settings import Settings

SECONDS = 15
TOP = 25


def profile(shape: str) -> Path:
    out = Path(".sextant") / f"profile-{shape}.txt"
    out.parent.mkdir(exist_ok=True)
    path, body, _, connections = bodies()[shape]
    with phase(Settings.from_env(), "profile") as (settings, key):
        port = free_port()
        env = service_env(settings, PORT=str(port), HOST="127.0.0.1")
        with process(["-m", "ops", "serve"], env) as receiver:
            wait_http(f"http://127.0.0.1:{port}/readyz")
            url = f"http://127.0.0.1:{port}{path}"
            wrk(url, body, basic_auth(key), 2, connections)
            load = threading.Thread(
                target=wrk, args=(url, body, basic_auth(key), SECONDS + 2, connections)
            )
            load.start()
            subprocess.run(
                [Path(sys.executable).parent / "py-spy", "record", "--pid", str(receiver.pid),
                 "--duration", str(SECONDS), "--format", "raw", "--output", str(out),
                 "--nonblocking"],
                check=True,
                capture_output=True,
            )  # fmt: skip
            load.join()
    return out


def summary(folded: Path) -> None:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    for title, counter in (("own time", own), ("in total", total)):
        print(f"\n{title} ({samples} samples)")
        for frame, n in counter.most_common(TOP):
            print(f"  {100 * n / samples:5.1f}%  {frame}")


if __name__ == "__main__":
    summary(profile(sys.argv[1] if len(sys.argv) > 1 else "single"))
