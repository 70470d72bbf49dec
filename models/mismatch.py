"""``Mismatch``: what a checker comparing two sides found, as data a test can assert on.

A differential check (spec against impl, a promise against what happened)
fails with the ``field`` that differs, the ``expected`` value (the spec's, or
the promise) and the ``actual`` one; the message is for people, the three
fields are for tests, which never match the message's wording.
"""

from __future__ import annotations


class Mismatch(AssertionError):
    """``field`` is ``actual`` where ``expected`` (an ``AssertionError``: checks fail with it)."""

    def __init__(self, field: str, expected: object, actual: object) -> None:
        super().__init__(
            f"{field}: the implementation has {brief(actual)}, the spec {brief(expected)}"
        )
        self.field = field
        self.expected = expected
        self.actual = actual


def expect(field: str, expected: object, actual: object) -> None:
    """A check: :class:`Mismatch` unless ``actual == expected``."""
    if actual != expected:
        raise Mismatch(field, expected, actual)


def brief(value: object) -> str:
    """A value for a message, long bytes (alone or as an outcome's result) summarised."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], bytes):
        return f"({value[0]!r}, {brief(value[1])})"
    if isinstance(value, bytes) and len(value) > 16:
        nonzero = len(value) - value.count(0)
        return f"<{len(value)} bytes, {nonzero} not zero: {value[:8]!r}...>"
    return repr(value)
