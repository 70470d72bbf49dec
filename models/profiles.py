"""Hypothesis settings profiles: the one place they are registered.

* ``ci`` — bounded and derandomized, so CI is repeatable and fits its budget;
* ``dev`` — the default for a developer's ``pytest``: random, modest;
* ``thorough`` — long random runs for soak testing.

``PGALLOC_PROFILE`` selects one; otherwise ``ci`` when the ``CI`` variable is
set (hypothesis itself would load its own ``ci`` profile then), else ``dev``.
Fuzzing under a time budget (``pgalloc check --budget``) is always
randomized, whatever the profile: see :func:`fuzzing_settings`.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

PROFILE_VARIABLE = "PGALLOC_PROFILE"

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
    """Randomized settings for budgeted fuzzing: never derandomized, no example database.

    One failure is reported (the first found, shrunk), with its reproducing program.
    """
    return settings(
        max_examples=max_examples,
        derandomize=False,
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
        suppress_health_check=_QUIET_HEALTH,
    )
