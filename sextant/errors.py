"""One error tree for the whole service.

Each error says whether retrying can help (`retriable`); entrypoints map errors to
an HTTP status, an exit code or the DLQ, nothing below them does.
"""

from __future__ import annotations


class SextantError(Exception):
    """Root of every error Sextant raises on purpose."""

    retriable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(SextantError):
    """A setting is missing or malformed; the process must not start."""


class AdminError(SextantError):
    """An operator command cannot be carried out as asked; the subclass says why."""


class NotFound(AdminError):
    """What the command names does not exist (a workspace, a connector, a key)."""


class AlreadyExists(AdminError):
    """What the command would create exists already."""


class InvalidInput(AdminError):
    """A value the command was given is not one it takes."""


# --- intake: a request the receiver refuses ---------------------------------------------


class RequestRejected(SextantError):
    """The receiver refuses a request; the subclass says why."""


class InvalidRequest(RequestRejected):
    """Not JSON, not a message or a batch, or no valid message in it."""

    def __init__(self, message: str, rejected: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.rejected = rejected or []


class MissingKey(RequestRejected):
    """No API key in the request, or one we do not know."""


class Forbidden(RequestRejected):
    """A revoked key, an untrusted Origin or a bad signature."""


class TooLarge(RequestRejected):
    """Over the size or count limits."""


class UnsupportedType(RequestRejected):
    """A message `type` Sextant does not handle."""


class Unavailable(RequestRejected):
    """Kafka did not acknowledge in time, or keys could not be read: the client should retry."""

    retriable = True


class OverLimit(RequestRejected):
    """The workspace is over its intake rate; `retry_after` says when it has room again."""

    retriable = True

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- worker --------------------------------------------------------------------------------


class BatchConflict(SextantError):
    """Another worker changed what a batch read while it ran; the batch is retried whole."""

    retriable = True
