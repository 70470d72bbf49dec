"""The preconditions of ``findAvailableRange``, as constraints on symbolic words.

They are what every caller guarantees (``Allocate`` checks its arguments and
the usage set keeps its ranges sorted and inside the file), and exactly the
hypotheses of every lemma: a proof says "for every input meeting these".
"""

from __future__ import annotations

from models.proofs.smt import Bool, Word, word
from spec.vocabulary import INT64_MAX, PAGE_SIZE


def page_aligned(value: Word) -> Bool:
    return (value & (PAGE_SIZE - 1)).eq(0)


def is_alignment(alignment: Word) -> Bool:
    """A power of two, at least a page (``Allocate`` uses a page or a huge page)."""
    return alignment.uge(PAGE_SIZE) & (alignment & (alignment - 1)).eq(0)


def is_length(length: Word) -> Bool:
    """Non-zero and page-aligned (``Allocate`` panics otherwise)."""
    return length.ne(0) & page_aligned(length)


def is_file_size(file_size: Word) -> Bool:
    """A non-negative Go int64."""
    return file_size.ule(INT64_MAX)


def search_parameters() -> tuple[Word, Word, list[Bool]]:
    """Symbolic ``length`` and ``alignment``, with their preconditions."""
    length, alignment = word("length"), word("alignment")
    return length, alignment, [is_length(length), is_alignment(alignment)]
