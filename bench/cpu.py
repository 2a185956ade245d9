"""CPU time from process accounting (/proc/PID/stat): one process's, and that of every
process a benchmark runs on this machine, by what it is, so a figure can say where a
call's CPU went."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sextant.settings import Settings


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User plus system CPU time the process has used so far; with `reaped_children`, also
    that of its children that have exited (fields 14-17 of stat(5))."""
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, str]]:
    """Every process: pid -> (parent pid, command line)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat(int(entry.name))[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue  # gone since the listing
        found[int(entry.name)] = (parent, cmdline)
    return found


def _postmaster(settings: Settings, processes: Mapping[int, tuple[int, str]]) -> int | None:
    """The embedded Postgres's postmaster: its data directory is the URL's socket dir."""
    hosts = parse_qs(urlsplit(settings.require_database_url()).query).get("host", [])
    if not hosts:  # a Postgres reached over TCP runs elsewhere
        return None
    data_dir = f"-D {hosts[0]} "
    return next((pid for pid, (_, cmd) in processes.items() if data_dir in cmd + " "), None)


def _broker(settings: Settings, processes: Mapping[int, tuple[int, str]]) -> int | None:
    """The embedded Tansu broker, found by the address it listens on."""
    for pid, (_, cmdline) in processes.items():
        if "tansu" in cmdline and f"tcp://{settings.require_kafka()} " in cmdline + " ":
            return pid
    return None


class Accounting:
    """CPU seconds by kind of process from construction to `spent()`: the given processes,
    this benchmark's own, and the embedded Postgres (with its backends, the exited ones
    too) and broker when they run here. A service elsewhere is not counted."""

    def __init__(self, settings: Settings, named: Mapping[str, Sequence[int]]) -> None:
        processes = _processes()
        self._named = dict(named) | {"bench client": [os.getpid()]}
        self._postmaster = _postmaster(settings, processes)
        if (broker := _broker(settings, processes)) is not None:
            self._named["broker"] = [broker]
        self._start = self._read()

    def _read(self) -> dict[str, float]:
        totals = {kind: sum(cpu_seconds(p) for p in pids) for kind, pids in self._named.items()}
        if self._postmaster is not None:
            backends = [
                pid for pid, (parent, _) in _processes().items() if parent == self._postmaster
            ]
            totals["postgres"] = cpu_seconds(self._postmaster, reaped_children=True) + sum(
                _alive_cpu(pid) for pid in backends
            )
        return totals

    def spent(self) -> dict[str, float]:
        """CPU seconds by kind since the accounting began."""
        now = self._read()
        return {kind: now[kind] - self._start.get(kind, 0.0) for kind in now}


def _alive_cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:  # exited since the listing: its time is in the postmaster's reaped total
        return 0.0
