"""The committed constraints pin every dependency, and a pinned run really runs the pins.

``.ci/run`` installs from ``constraints.txt`` and says so with ``PGALLOC_DEPS=pinned``;
``PGALLOC_DEPS=newest`` (opt-in) installs the newest releases instead, to find drift.
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement  # pytest's dependency, pinned too

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    """constraints.txt as canonical name -> pinned version."""
    found = {}
    for text in (ROOT / "constraints.txt").read_text().splitlines():
        line = text.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            found[_canonical(name)] = version
    return found


def declared() -> set[str]:
    """Every distribution pyproject.toml asks for: build, runtime and dev."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = [
        *pyproject["build-system"]["requires"],
        *pyproject["project"]["dependencies"],
        *pyproject["project"]["optional-dependencies"]["dev"],
    ]
    names = set()
    for requirement in requirements:
        match = NAME.match(requirement)
        assert match, requirement
        names.add(_canonical(match.group()))
    return names


def test_every_declared_dependency_is_pinned() -> None:
    missing = declared() - set(pins())
    assert not missing, f"constraints.txt does not pin {sorted(missing)}"


def test_every_installed_requirement_of_ours_is_pinned() -> None:
    """What the declared dependencies pull in is pinned too (transitively)."""
    pinned = pins()
    todo = sorted(declared() - {"setuptools"})
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_canonical(requirement.name))
    assert not seen - set(pinned), f"installed but not pinned: {sorted(seen - set(pinned))}"


def test_the_installed_versions_are_the_ones_asked_for() -> None:
    """A pinned run (``.ci/run``) runs exactly the pins; any install, what pyproject allows."""
    if os.environ.get("PGALLOC_DEPS") == "pinned":
        wrong = {
            name: (version, metadata.version(name))
            for name, version in pins().items()
            if name != "setuptools" and metadata.version(name) != version
        }
        assert not wrong, f"installed versions differ from constraints.txt: {wrong}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for text in [
        *pyproject["project"]["dependencies"],
        *pyproject["project"]["optional-dependencies"]["dev"],
    ]:
        requirement = Requirement(text)
        installed = metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), (text, installed)
