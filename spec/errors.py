"""The errors of pgalloc, shared by the specification and the implementation.

The seed reacts to bad input in two ways, and so do we:

* it **panics** on out-of-contract calls (an unaligned length, an ill-formed
  range, references dropped that were never held...). We raise a
  :class:`ContractViolation` subclass instead, *after* validating and *before*
  changing anything: a rejected call leaves the allocator exactly as it was;
* it **returns an error** for conditions a correct caller must handle: ENOMEM
  when no range fits, EACCES for an executable mapping. We raise ``OSError``
  with that errno.

Invalid options at construction are an error in the seed too (not a panic):
:class:`InvalidOptions`.
"""

from __future__ import annotations

import errno
import os


class ContractViolation(Exception):
    """An out-of-contract call that the seed answers with a panic; nothing changed."""


class InvalidArgument(ContractViolation, TypeError):
    """An argument of the wrong type or outside the uint64 range."""


class InvalidLength(ContractViolation, ValueError):
    """A length that is zero or not a multiple of the page size."""


class InvalidRange(ContractViolation, ValueError):
    """A range that is ill-formed, empty, or not page-aligned where pages are required."""


class UnallocatedPages(ContractViolation):
    """The range includes pages that are not allocated."""


class NoReferences(ContractViolation):
    """The range includes allocated pages with no references (they await reclaim)."""


class RangeBeyondFile(ContractViolation):
    """The range extends past the end of the backing file."""


class UseAfterDestroy(ContractViolation):
    """A method was called after ``destroy``."""


class InvalidOptions(ValueError):
    """``MemoryFileOpts`` that the seed's NewMemoryFile rejects with an error."""


class InvariantViolation(AssertionError):
    """A state breaks one of the specification's invariants (a bug, never bad input)."""


def os_error(code: int, detail: str) -> OSError:
    """An ``OSError`` carrying ``code`` as the seed's syserror does."""
    return OSError(code, f"{os.strerror(code)}: {detail}")


def enomem(detail: str) -> OSError:
    return os_error(errno.ENOMEM, detail)


def eacces(detail: str) -> OSError:
    return os_error(errno.EACCES, detail)
