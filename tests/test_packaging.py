"""The wheel carries what the command line needs: the corpus, the schemas and py.typed.

Built from this checkout and installed into a fresh virtual environment
outside the source tree; every command then runs from a temporary folder,
so nothing can come from the checkout. The fresh environment gets the
wheel alone; its dependencies come from the running environment through a
``.pth`` line (no network, no second copy of z3), and ``pip check`` proves
the wheel's declared dependencies are what it finds. With
``PGALLOC_DEPS=newest`` (opt-in, see ``.ci/run``) they are instead
installed from PyPI, the newest releases, as a user's ``pip install`` would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import impl

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
from spec import PAGE_SIZE, FileRange, MemoryFileOpts, MemoryKind, SpecMemoryFile
from impl import MemoryFile


def allocate_both(spec: SpecMemoryFile, impl: MemoryFile) -> tuple[FileRange, FileRange]:
    return spec.allocate(PAGE_SIZE, MemoryKind.ANONYMOUS), impl.allocate(
        PAGE_SIZE, MemoryKind.ANONYMOUS
    )


def make() -> SpecMemoryFile:
    return SpecMemoryFile(MemoryFileOpts())
"""

BAD_LINE = 5
BAD = """\
from spec import PAGE_SIZE, MemoryKind, SpecMemoryFile


def allocate(spec: SpecMemoryFile) -> int:
    return spec.allocate(PAGE_SIZE, MemoryKind.ANONYMOUS)
"""
"""Line 5 returns a FileRange where an int is promised."""


@dataclass(frozen=True)
class Installed:
    bin: Path
    site: Path
    work: Path
    """An empty temporary folder to run commands from."""

    def run(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    scratch = tmp_path_factory.mktemp("wheel")
    assert not scratch.is_relative_to(ROOT)
    dist = scratch / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(dist), str(ROOT)], check=True)
    (wheel,) = dist.glob("pgalloc-*.whl")
    venv = scratch / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    newest = os.environ.get("PGALLOC_DEPS") == "newest"
    subprocess.run(
        [
            *pip,
            "--python",
            str(python),
            "install",
            *(["mypy"] if newest else ["--no-deps"]),
            str(wheel),
        ],
        check=True,
        env={k: v for k, v in os.environ.items() if not (newest and k == "PIP_CONSTRAINT")},
    )
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # The dependencies: this environment's site-packages, after the fresh one (a path
    # added by a .pth line is searched, but its own .pth files, such as the editable
    # install's finder for this checkout, are not run).
    if not newest:
        (site / "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    checked = subprocess.run(
        [*pip, "--python", str(python), "check"], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout
    work = scratch / "work"
    work.mkdir()
    yield Installed(venv / "bin", site, work)


def test_the_packages_are_the_folders_with_an_init() -> None:
    """pyproject lists the packages (the corpus is mapped in): none may be forgotten."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("spec", "impl", "models")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert listed == on_disk | {"models.conformance.vectors"}


def test_the_installed_code_is_the_wheels(installed: Installed) -> None:
    done = installed.run("python", "-c", "import models, spec, impl; print(models.__file__)")
    assert Path(done.stdout.strip()).is_relative_to(installed.site), done.stderr
    for package in ("spec", "impl", "models"):
        assert (installed.site / package / "py.typed").is_file()
    assert (installed.site / "models" / "conformance" / "schemas" / "vector.schema.json").is_file()


def test_the_wheel_carries_the_build_this_checkout_runs(installed: Installed) -> None:
    """Compiled here, compiled in the wheel (CI says it must be: PGALLOC_EXPECT_BUILD)."""
    done = installed.run("pgalloc", "--version")
    assert done.returncode == 0, done.stderr
    here = "compiled" if impl.compiled() else "pure Python"
    if os.environ.get("PGALLOC_EXPECT_BUILD") == "compiled":
        here = "compiled"
    assert f"impl: {here}" in done.stdout, done.stdout
    assert Path(
        installed.run("python", "-c", "import impl.gaps as g; print(g.__file__)").stdout.strip()
    ).is_relative_to(installed.site)


def test_the_installed_corpus_replays_through_the_impl_driver(installed: Installed) -> None:
    manifest = json.loads(
        (installed.site / "models" / "conformance" / "vectors" / "manifest.json").read_text()
    )
    count = len(manifest["vectors"])
    assert count == len(json.loads((ROOT / "vectors" / "manifest.json").read_text())["vectors"])
    done = installed.run(
        "pgalloc",
        "vectors",
        "replay",
        "--quiet",
        "--driver",
        f"{installed.bin}/pgalloc driver impl",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    passed, failed, skipped, _ = (
        int(part.split()[0]) for part in summary.split(": ")[1].split(", ")
    )
    assert failed == 0 and passed + skipped == count and passed > count // 2, summary


def test_an_empty_folder_is_an_error(installed: Installed) -> None:
    (installed.work / "empty").mkdir()
    done = installed.run(
        "pgalloc", "vectors", "replay", "--driver", "pgalloc driver spec", "--vectors", "empty"
    )
    assert done.returncode == 2
    assert (
        done.stderr
        == "pgalloc vectors replay: empty: no vector files in it (*.json besides manifest.json)\n"
    )


def test_the_installed_corpus_is_what_the_generator_makes(installed: Installed) -> None:
    checked = installed.run("pgalloc", "vectors", "generate", "--check")
    assert checked.returncode == 0, checked.stdout
    assert "/models/conformance/vectors is what the generator makes" in checked.stdout
    refused = installed.run("pgalloc", "vectors", "generate")
    assert refused.returncode == 2
    assert refused.stderr == (
        "pgalloc vectors generate: not run from a source checkout: give --dir FOLDER\n"
    )


def test_downstream_code_is_type_checked_against_the_installed_packages(
    installed: Installed,
) -> None:
    (installed.work / "good.py").write_text(GOOD)
    (installed.work / "bad.py").write_text(BAD)
    cache = ["--cache-dir", str(installed.work / ".mypy_cache"), "--no-incremental"]
    good = installed.run("python", "-m", "mypy", "--strict", *cache, "good.py")
    assert good.returncode == 0, good.stdout
    bad = installed.run("python", "-m", "mypy", "--strict", *cache, "bad.py")
    assert bad.returncode == 1
    errors = [line for line in bad.stdout.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith(f"bad.py:{BAD_LINE}: error: "), bad.stdout
    assert "[return-value]" in errors[0] and "import-untyped" not in bad.stdout
