"""Hypothesis settings profiles: the one place they are registered.

* ``ci`` — bounded and derandomized, so CI is repeatable and fits its budget;
* ``dev`` — the default for a developer's ``pytest``: random, modest;
* ``thorough`` — long random runs for soak testing.

``PGALLOC_PROFILE`` selects one; otherwise ``ci`` when the ``CI`` variable is
set (hypothesis itself would load its own ``ci`` profile then), else ``dev``.
Fuzzing under a time budget (``pgalloc check --budget``) is always
randomized, whatever the profile: see :func:`fuzzing_settings`; it keeps
its failures in the example database named by ``PGALLOC_EXAMPLES`` (a
folder, perhaps shared by many machines), if set, and replays them first.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE_VARIABLE = "PGALLOC_PROFILE"
EXAMPLES_VARIABLE = "PGALLOC_EXAMPLES"
"""A folder: budgeted fuzzing's example database (``--examples`` sets it for the workers)."""

_QUIET_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=_QUIET_HEALTH,
)
settings.register_profile(
    "dev", max_examples=100, deadline=None, suppress_health_check=_QUIET_HEALTH
)
settings.register_profile(
    "thorough",
    max_examples=5000,
    deadline=None,
    derandomize=False,
    suppress_health_check=_QUIET_HEALTH,
)


def selected_profile() -> str:
    chosen = os.environ.get(PROFILE_VARIABLE)
    if chosen:
        return chosen
    return "ci" if os.environ.get("CI") else "dev"


def load_selected_profile() -> str:
    """Load (and return the name of) the profile the environment selects."""
    name = selected_profile()
    settings.load_profile(name)
    return name


def fuzzing_settings(max_examples: int = 1_000_000) -> settings:
    """Randomized settings for budgeted fuzzing: never derandomized.

    With ``PGALLOC_EXAMPLES`` set, failures are saved in that folder and
    replayed first (hypothesis's ``DirectoryBasedExampleDatabase``, safe to
    share between processes and machines); otherwise no database is used.
    One failure is reported (the first found, shrunk), with its reproducing program.
    """
    folder = os.environ.get(EXAMPLES_VARIABLE)
    database = DirectoryBasedExampleDatabase(folder) if folder else None
    reuse = [Phase.reuse] if database is not None else []
    return settings(
        max_examples=max_examples,
        derandomize=False,
        database=database,
        deadline=None,
        phases=[*reuse, Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
        suppress_health_check=_QUIET_HEALTH,
    )
