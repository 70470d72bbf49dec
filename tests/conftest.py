"""pytest configuration: load the hypothesis profile the environment selects; print the figures."""

from __future__ import annotations

from _pytest.terminal import TerminalReporter

from models.profiles import load_selected_profile
from tests.figures import FIGURES

load_selected_profile()


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures (docs/reliability.md)")
        for name, count in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {count:,}")
