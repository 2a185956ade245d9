"""Custom traits and properties typed by their definitions: a name seen for the first time is
defined, a defined name is converted to its type, and a value that does not convert is
left out."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import msgspec

from sextant.calls import IngestionWarning

AttributeType = Literal["string", "number", "boolean", "datetime"]
ATTRIBUTE_TYPES: Final = ("string", "number", "boolean", "datetime")
Entity = Literal["user", "account", "event"]
ENTITIES: Final = ("user", "account", "event")

# (workspace, entity, event name or '') -> {attribute name: type}
Scope = tuple[int, str, str]
Definitions = dict[Scope, dict[str, AttributeType]]

_encode = msgspec.json.Encoder()


@dataclass
class AttributeTypes:
    """The definitions a batch reads, and those it adds: at most `cap` per entity (per
    event name for event properties)."""

    known: Definitions
    cap: int = 1000
    new: dict[tuple[int, str, str, str], AttributeType] = field(default_factory=dict)

    def typed(
        self,
        ws: int,
        entity: Entity,
        event: str,
        name: str,
        value: Any,
        first_type: AttributeType = "string",
    ) -> tuple[AttributeType | None, bool, Any]:
        """The name's type, and `(True, value converted to it)` or `(False, None)` when the
        value does not convert. A name seen for the first time is defined as `first_type`;
        past the cap it is not, and its type is None."""
        defined = self.known.setdefault((ws, entity, event), {})
        attribute_type = defined.get(name)
        if attribute_type is None:
            if len(defined) >= self.cap:
                return None, False, None
            attribute_type = defined[name] = first_type
            self.new[(ws, entity, event, name)] = attribute_type
        ok, typed = convert(value, attribute_type)
        return attribute_type, ok, typed

    def left_out(
        self, entity: str, event: str, name: str, value: Any, attribute_type: AttributeType | None
    ) -> IngestionWarning:
        """Why a value was left out: its name past the cap (no type), or no conversion."""
        detail: dict[str, Any] = {"entity": entity, "name": name}
        if event:
            detail["event"] = event
        if attribute_type is None:
            detail |= {"limit": self.cap, "rule": _CAP_RULE}
            return IngestionWarning("attribute_cap_reached", detail)
        detail |= {"type": attribute_type, "value": _shown(value)}
        return IngestionWarning("attribute_not_converted", detail)


_CAP_RULE = "a workspace defines at most this many attributes per entity; new names are dropped"


def _shown(value: Any) -> Any:
    """A value as a warning shows it: short text as it is, anything longer cut."""
    if isinstance(value, str):
        return value[:100]
    if isinstance(value, dict | list):
        return f"{type(value).__name__} of {len(value)}"
    return value


def convert(value: Any, attribute_type: AttributeType) -> tuple[bool, Any]:
    """`(True, converted)` when `value` converts to `attribute_type`, else `(False, None)`."""
    match attribute_type:
        case "string":
            return True, to_string(value)
        case "number":
            number = to_number(value)
            return (number is not None), number
        case "boolean":
            flag = to_boolean(value)
            return (flag is not None), flag
        case "datetime":
            moment = to_datetime(value)
            return (moment is not None), moment


def to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return _encode.encode(value).decode()


def to_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def to_boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def to_datetime(value: Any) -> str | None:
    """ISO-8601 text, normalised to UTC; stored as text inside jsonb."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")
