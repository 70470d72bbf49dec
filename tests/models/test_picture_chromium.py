"""The pictures in a real browser: headless Chromium loads each page, and the DOM it built
shows every step, segment, differing range and lane step; a screenshot is not blank.

Chromium is Debian's ``chromium`` package, which ``.ci/run`` installs. Without it
these tests fail under CI (it should be there) and are skipped elsewhere, saying
how to install it, so that ``pytest`` passes on a fresh machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from models.conformance.mutants import MUTANTS
from models.conformance.process import InProcessDriver
from models.conformance.replay import load_vectors, replay_vector
from models.explore import SEED_DEFECT_SCENARIOS, explore
from models.picture import page
from models.picture.counterexamples import from_violation
from models.picture.trace import Trace, from_divergence, from_vector
from tests.models.test_picture import (
    CORPUS,
    HOSTILE,
    check_page,
    check_safe,
    corpus,
    elements,
    hostile_vector,
)

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
"""Without the network-related ones, the closed network makes Chromium slow or fail."""
WINDOW = (1280, 1000)


@pytest.fixture
def browser(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run Chromium on a page with a new, empty profile; fail or skip if there is none."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "headless Chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; .ci/run installs it before pytest")
        pytest.skip(reason)
    executable: str = found
    profiles = iter(range(1000))

    def run(page_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
        profile = tmp_path / f"profile-{next(profiles)}"
        profile.mkdir()
        command = [executable, *FLAGS, f"--user-data-dir={profile}", *args, page_file.as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        return done

    return run


def load_in_browser(
    browser: Callable[..., subprocess.CompletedProcess[str]], html: str, where: Path
) -> tuple[str, Image.Image]:
    """The DOM Chromium built from ``html``, and its screenshot."""
    page_file = where / "picture.html"
    page_file.write_text(html, encoding="utf-8")
    dom = browser(page_file, "--dump-dom").stdout
    shot = where / "picture.png"
    browser(page_file, f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}")
    return dom, Image.open(shot).convert("RGB")


def check_not_blank(image: Image.Image) -> None:
    assert image.size == WINDOW
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None
    background = max(count for count, _ in colours)
    drawn = WINDOW[0] * WINDOW[1] - background
    assert len(colours) >= 50, f"only {len(colours)} colours: blank?"
    assert drawn >= 0.03 * WINDOW[0] * WINDOW[1], f"only {drawn} pixels not background: blank?"


def check_in_browser(
    browser: Callable[..., subprocess.CompletedProcess[str]], trace: Trace, where: Path
) -> str:
    dom, image = load_in_browser(browser, page.render(trace), where)
    check_page(dom, trace)
    check_safe(dom)
    check_not_blank(image)
    return dom


def test_a_vector_in_the_browser(browser: Any, tmp_path: Path) -> None:
    trace = from_vector(corpus("refcount/across-kinds"))
    check_in_browser(browser, trace, tmp_path)
    # The stepping script works: two steps forward, then one frame at a time.
    clicks = "".join(
        f"document.getElementById('{button}').click();" for button in ("next", "next", "only")
    )
    stepped = page.render(trace).replace("</body>", f"<script>{clicks}</script></body>")
    page_file = tmp_path / "stepped.html"
    page_file.write_text(stepped, encoding="utf-8")
    frames = elements(browser(page_file, "--dump-dom").stdout).with_class("frame")
    shown = [a["id"] for a, _ in frames if "hidden" not in a]
    assert [a["id"] for a, _ in frames if "current" in a["class"].split()] == ["f1"]
    assert shown == ["f1"], shown


def test_a_mutant_divergence_in_the_browser(browser: Any, tmp_path: Path) -> None:
    # The real command, a real mutant driver process: the picture appears beside the vector.
    vector = tmp_path / "huge-alignment.json"
    shutil.copy(CORPUS / "alloc" / "huge-alignment.json", vector)
    mutant = f"{sys.executable} -m models.cli driver spec --mutant huge-4k"
    command = [sys.executable, "-m", "models.cli", "vectors", "replay", "--driver", mutant]
    replayed = subprocess.run(
        [*command, "--vectors", str(vector)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replayed.returncode == 1, replayed.stderr
    picture = tmp_path / "huge-alignment.divergence.html"
    assert f"picture: {picture}" in replayed.stdout
    dom = browser(picture, "--dump-dom").stdout
    # The same divergence, rebuilt here, says what the page must show.
    (loaded,) = load_vectors(vector)
    result = replay_vector(loaded, InProcessDriver(MUTANTS["huge-4k"]()))
    assert result.step is not None
    trace = from_divergence(
        loaded.to_json(), result.step, result.actual, result.detail, result.after
    )
    assert trace.frames[-1].fields and len(elements(dom).with_class("diff-range")) >= 4
    check_page(dom, trace)
    check_safe(dom)
    check_in_browser(browser, trace, tmp_path)


def test_a_model_checker_counterexample_in_the_browser(browser: Any, tmp_path: Path) -> None:
    scenario = SEED_DEFECT_SCENARIOS[1]
    violation = explore(scenario).violation
    assert violation is not None
    trace = from_violation(scenario, violation)
    dom = check_in_browser(browser, trace, tmp_path)
    lanes = {a["data-lane"] for a, _ in elements(dom).with_class("lane-step")}
    assert lanes == {frame.lane for frame in trace.frames if frame.lane} and len(lanes) >= 2


def test_hostile_strings_stay_text_in_the_browser(browser: Any, tmp_path: Path) -> None:
    document = hostile_vector()
    dom, _ = load_in_browser(browser, page.render(from_vector(document)), tmp_path)
    check_safe(dom)  # one script element, ours; no event handler anywhere
    found = elements(dom)
    shown = "".join(found.text)
    assert all(string in shown for string in HOSTILE)
    assert {a["data-user"] for a, _ in found.with_class("user")} == set(HOSTILE[:2])
