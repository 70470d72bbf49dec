"""What the reliability tests covered in this run, printed at the end of pytest.

Tests add to :data:`FIGURES` as they go (bytes checked zero, faults injected,
bad inputs tried, histories checked...); ``tests/conftest.py`` prints the
totals after the run, so that the figures docs/reliability.md quotes can be
read off any run.
"""

from __future__ import annotations

from collections import Counter

FIGURES: Counter[str] = Counter()
"""Counts by name, in this pytest process."""
