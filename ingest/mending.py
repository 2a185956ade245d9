"""Decoding a message once, mended: no deeper than the limit, numbers in a double's range,
text free of NUL; each mend written down as an ingestion warning.

msgspec decodes; a number it refuses (past a double) sends the message through the
standard library's decoder instead, which hands such numbers over to be left out.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

import msgspec

from ingest.scan import nests_deeper_than
from sextant.calls import MAX_DEPTH, IngestionWarning
from sextant.errors import InvalidRequest

_LARGEST_DOUBLE: Final = 1.7976931348623157e308

_decoder = msgspec.json.Decoder()
# Hints that a message needs a walk through all of it; most messages have none.
_NUL: Final = b"\\u0000"
_HUGE_INTEGER = re.compile(rb"\d{309}")
_SURROGATE = re.compile(rb"\\u[dD][89abAB]")


class Mends:
    """The warnings of one message (or a batch's own fields), written as the door mends it."""

    def __init__(self) -> None:
        self.warnings: list[IngestionWarning] = []

    def dropped(self, path: str, reason: str) -> None:
        self.warnings.append(IngestionWarning("field_dropped", {"field": path, "reason": reason}))

    def coerced(self, path: str, reason: str) -> None:
        self.warnings.append(IngestionWarning("field_coerced", {"field": path, "reason": reason}))

    def unparsable(self, path: str, value: str) -> None:
        detail = {"field": path, "value": value[:100], "reason": "not a timestamp; ignored"}
        self.warnings.append(IngestionWarning("timestamp_unparsable", detail))


def decode_object(raw: bytes, mends: Mends, what: str, root: str = "") -> dict[str, Any]:
    """`raw` as a JSON object no deeper than the limit, mended: its numbers in a double's
    range and its text free of NUL."""
    if nests_deeper_than(raw, MAX_DEPTH):
        raise InvalidRequest(f"{what} is nested deeper than {MAX_DEPTH} levels")
    out_of_range = False
    try:
        value = _decoder.decode(raw)
    except msgspec.ValidationError:  # a number outside a double's range
        value, out_of_range = _decode_out_of_range(raw, what), True
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as e:
        raise InvalidRequest(_not_json(raw, what, e)) from e
    if not isinstance(value, dict):
        raise InvalidRequest(f"{what} is not a JSON object")
    if out_of_range or not _mends_nothing(raw):
        return _clean_all(value, mends, root)
    return value


def is_plain(raw: bytes) -> bool:
    """Whether decoding `raw` mends nothing and its depth is within the limit."""
    return _mends_nothing(raw) and not nests_deeper_than(raw, MAX_DEPTH)


def _mends_nothing(raw: bytes) -> bool:
    """No NUL, no integer past a double; a float past one the decoder itself refuses."""
    return _NUL not in raw and _HUGE_INTEGER.search(raw) is None


# --- decoding ---------------------------------------------------------------------------

_OUT = object()  # a number outside a double's range, as the lenient decoder marks it


def _decode_out_of_range(raw: bytes, what: str) -> Any:
    """Decode with numbers outside a double's range marked, for the walk to leave out.

    msgspec refuses such numbers outright; the standard library's decoder hands them to
    us. The depth is already known to be small, so its recursion is bounded.
    """

    def number(text: str) -> Any:
        value = float(text)
        return value if math.isfinite(value) else _OUT

    def constant(text: str) -> Any:
        raise ValueError(f"{text} is not JSON")

    try:
        return json.loads(raw, parse_float=number, parse_int=_integer, parse_constant=constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise InvalidRequest(f"{what} is not JSON: {e}") from e


def _integer(text: str) -> Any:
    value = int(text)
    return value if abs(value) <= _LARGEST_DOUBLE else _OUT


def _not_json(raw: bytes, what: str, error: Exception) -> str:
    if isinstance(error, RecursionError):
        return f"{what} is nested deeper than {MAX_DEPTH} levels"
    if isinstance(error, UnicodeDecodeError) or _SURROGATE.search(raw) or not _utf8(raw):
        return f"{what} is not valid Unicode text"
    return f"{what} is not JSON: {error}"


def _utf8(raw: bytes) -> bool:
    """Whether the bytes are UTF-8 (msgspec 0.23 reports bad UTF-8 as a DecodeError)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _clean_all(message: dict[str, Any], mends: Mends, root: str) -> dict[str, Any]:
    """Remove NUL from every string and key, and leave out numbers outside a double's
    range, anywhere in the message (at most 32 levels deep, so recursion is bounded)."""
    nul_fields: list[str] = []

    def clean(value: Any, path: str) -> Any:
        if isinstance(value, str):
            if "\x00" in value:
                nul_fields.append(path)
                return value.replace("\x00", "")
            return value
        if value is _OUT or (isinstance(value, int) and not _in_range(value)):
            mends.dropped(path, "a number outside the range of a double")
            return _OUT
        if isinstance(value, dict):
            kept = {}
            for key, item in value.items():
                name = key.replace("\x00", "") if "\x00" in key else key
                inner = f"{path}.{name}" if path else name
                if name != key:
                    nul_fields.append(inner)
                cleaned = clean(item, inner)
                if cleaned is not _OUT:
                    kept[name] = cleaned
            return kept
        if isinstance(value, list):
            items = [clean(item, f"{path}[{i}]") for i, item in enumerate(value)]
            return [item for item in items if item is not _OUT]
        return value

    cleaned: dict[str, Any] = clean(message, root)
    if nul_fields:
        mends.coerced(", ".join(nul_fields[:10]), "NUL characters removed")
    return cleaned


def _in_range(value: int) -> bool:
    return isinstance(value, bool) or abs(value) <= _LARGEST_DOUBLE
