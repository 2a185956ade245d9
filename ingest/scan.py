"""Reading JSON's shape without recursion: how deep a text nests, and where the parts of an
array or object are.

msgspec decodes recursively, so a body nested a thousand levels deep makes it raise
RecursionError; these scans run in a loop over the text's brackets and strings, so no
input can take the receiver's stack.
"""

from __future__ import annotations

import re

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a string, with its escapes
# A string, a bracket, or what separates members: for splitting.
_STRUCTURE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},:]')
_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")
_ONE_BRACKET = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def nests_deeper_than(text: bytes, limit: int) -> bool:
    """Whether `text` has more than `limit` objects and arrays inside one another.

    Strings are cut out and every other byte but brackets dropped; then each pass removes
    the innermost pairs, so what is left after `limit` passes nests deeper. Every step is
    a bytes method, so a 500 KB body costs milliseconds. Unbalanced text is not JSON, and
    is left to the decoder to refuse.
    """
    opened = text.count(b"{") + text.count(b"[")
    if opened <= limit:
        return False  # too few brackets to nest that deep, brackets in strings included
    brackets = _STRING.sub(b"", text).translate(_ONE_BRACKET, _NOT_BRACKETS)
    if brackets.count(b"[") * 2 != len(brackets):
        return False
    for _ in range(limit):
        brackets = brackets.replace(b"[]", b"")
        if not brackets:
            return False
    return True


def parts(text: bytes) -> list[tuple[bytes | None, bytes]]:
    """The members of the array or object `text` is: (None, element) for an array,
    (key as JSON text, value) for an object; unparsed, in order. Empty when `text` is
    neither."""
    body = text.strip()
    if not body or body[0] not in _OPEN:
        return []
    is_object = body[0] == ord("{")
    found: list[tuple[bytes | None, bytes]] = []
    depth, start, key = 0, 0, None
    for match in _STRUCTURE.finditer(body):
        first = body[match.start()]
        if first in _OPEN:
            depth += 1
            if depth == 1:
                start = match.end()
        elif first in _CLOSE:
            depth -= 1
            if depth == 0:
                _close(found, key, body[start : match.start()])
                break
        elif depth == 1 and first == ord(","):
            _close(found, key, body[start : match.start()])
            start, key = match.end(), None
        elif depth == 1 and first == ord(":") and is_object:
            key, start = body[start : match.start()].strip(), match.end()
    return found


def _close(found: list[tuple[bytes | None, bytes]], key: bytes | None, value: bytes) -> None:
    value = value.strip()
    if value or key is not None:
        found.append((key, value))
