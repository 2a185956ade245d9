"""The management API's request bodies, decoded once with msgspec: a field of the wrong
type, a missing one or one it does not know is a 422 naming it."""

from __future__ import annotations

from typing import Annotated

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Domain = Annotated[str, msgspec.Meta(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.-]+$")]
Secret = Annotated[str, msgspec.Meta(min_length=8, max_length=200)]
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    pass


class WorkspaceCreate(_Body):
    name: Name


class ConnectorCreate(_Body):
    name: Name
    block_free_email_users: bool = False
    trusted_domains: list[Domain] = []
    shared_secret: Secret | None = None


class ConnectorChange(_Body):
    block_free_email_users: bool | None = None
    trusted_domains: list[Domain] | None = None
    shared_secret: Secret | None = None


class KeyCreate(_Body):
    connector: Name


class AttributeDefine(_Body):
    entity: str
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    type: str
    event: Name | None = None


class SuppressionCreate(_Body):
    user_id: Identifier


class BlockedIdentifierCreate(_Body):
    value: Identifier


class LimitSet(_Body):
    calls_per_second: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
