"""``pgalloc vectors generate``: the corpus, derived from the specification.

Three sources, all recorded through the checked specification:

* ``SCENARIOS`` — hand-named scenarios (:mod:`models.conformance.scenarios`);
* ``sequences/`` — every sequence of three :data:`~models.conformance.actions.EXHAUSTIVE`
  actions (each step followed by a state check, so every shorter prefix is
  checked too);
* ``random/``, ``random-faults/`` and ``random-host/`` — long sequences
  drawn by hypothesis, derandomized: the same hypothesis version and the
  same code give the same corpus, byte for byte (the manifest records the
  version). ``random/`` uses every feature but ``host`` and
  ``kernel-faults``, so a port without those still replays it all;
  ``random-faults/`` adds ``kernel-faults`` (faults set and cleared
  mid-sequence), ``random-host/`` adds ``host``.

The manifest lists every vector with its digest and features, the format,
protocol and specification versions, the features and the allowances.
Generation takes a few seconds, so CI regenerates and compares.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import hypothesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import providers
from hypothesis.internal.constants_ast import Constants

from models.conformance.actions import (
    EXHAUSTIVE,
    action_table,
    random_options,
    random_step,
)
from models.conformance.codec import options_json
from models.conformance.protocol import (
    ALLOWANCES,
    DESCRIBES,
    FEATURES,
    FORMAT_VERSION,
    PROTOCOL_VERSION,
)
from models.conformance.recorder import Recorder
from models.conformance.scenarios import SCENARIOS
from models.conformance.schema import validate, validate_vector
from models.conformance.vector import Vector, derive_features, dumps, spec_version

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2] / "vectors"
"""The committed corpus: ``vectors/`` at the top of the repository."""

MANIFEST = "manifest.json"
SEQUENCE_LENGTH = 3
RANDOM_COUNT = 40
RANDOM_FAULTS_COUNT = 24
RANDOM_HOST_COUNT = 8
RANDOM_STEPS = (15, 40)

PORTABLE_FEATURES = frozenset(FEATURES) - {"host", "kernel-faults"}
"""What the random/ sequences may use: everything a port can be asked without the host
model, except the failing ftruncate, mmap and mincore (which random-faults/ adds)."""


def scenario_vectors() -> list[Vector]:
    return [record() for record in SCENARIOS.values()]


def sequence_vectors() -> list[Vector]:
    """Every sequence of :data:`SEQUENCE_LENGTH` exhaustive actions, on default options."""
    vectors = []
    for names in itertools.product(EXHAUSTIVE, repeat=SEQUENCE_LENGTH):
        recorder = Recorder(
            "sequences/" + "-".join(names),
            f"The actions {', '.join(names)} in turn (see models/conformance/actions.py).",
        )
        for name in names:
            EXHAUSTIVE[name](recorder)
        vectors.append(recorder.vector())
    return vectors


@contextmanager
def _without_local_constants() -> Iterator[None]:
    """Keep hypothesis from drawing constants found in the modules this process loaded.

    Hypothesis biases some draws towards literals it finds in every local
    module in ``sys.modules``, so a derandomized run would depend on what
    else the process happened to import (a test session, ``pgalloc check``).
    The corpus must not: this empties that pool (an internal of hypothesis,
    whose version the manifest records) and its cache for the duration.
    """
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        with mock.patch.object(providers, "_get_local_constants", Constants):
            yield
    finally:
        providers.CONSTANTS_CACHE.cache.clear()


def random_vectors(prefix: str, count: int, features: Collection[str]) -> list[Vector]:
    """``count`` hypothesis-drawn sequences using ``features``, derandomized."""
    collected: list[Vector] = []
    table = action_table(features)

    @settings(
        parent=settings.get_profile("default"),
        max_examples=count,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def generate(data: st.DataObject) -> None:
        opts, faults = random_options(data.draw, features)
        steps = data.draw(st.integers(*RANDOM_STEPS))
        name = f"{prefix}/{len(collected):03d}"
        options = json.dumps(options_json(opts), separators=(",", ":"))
        recorder = Recorder(
            name,
            f"{steps} hypothesis-drawn operations on {options}"
            + (f" with faults {json.dumps(faults)}" if faults else "")
            + ".",
            opts,
            faults=faults,
        )
        for _ in range(steps):
            random_step(recorder, data.draw, table, features)
        if data.draw(st.integers(0, 4)) == 0:
            recorder.simple("destroy")
        collected.append(recorder.vector())

    with _without_local_constants():
        generate()
    return collected


def all_vectors() -> list[Vector]:
    return [
        *scenario_vectors(),
        *sequence_vectors(),
        *random_vectors("random", RANDOM_COUNT, PORTABLE_FEATURES),
        *random_vectors(
            "random-faults", RANDOM_FAULTS_COUNT, PORTABLE_FEATURES | {"kernel-faults"}
        ),
        *random_vectors("random-host", RANDOM_HOST_COUNT, frozenset(FEATURES) - {"kernel-faults"}),
    ]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def render(vectors: list[Vector]) -> dict[str, str]:
    """Every file of the corpus (relative path -> text), manifest included.

    Each vector is validated against the schema as it is rendered.
    """
    files = {f"{vector.name}.json": dumps(vector) for vector in vectors}
    for text in files.values():
        validate_vector(json.loads(text))
    if len(files) != len(vectors):
        raise ValueError("two vectors share a name")
    entries = [
        {
            "path": path,
            "sha256": _sha256(text),
            "steps": len(vector.steps),
            "features": list(derive_features(vector.steps)),
        }
        for (path, text), vector in zip(files.items(), vectors, strict=True)
    ]
    entries.sort(key=lambda entry: str(entry["path"]))
    digest = _sha256("".join(f"{entry['sha256']} {entry['path']}\n" for entry in entries))
    manifest = {
        "format": FORMAT_VERSION,
        "protocol": PROTOCOL_VERSION,
        "spec_version": spec_version(),
        "describes": DESCRIBES,
        "generated_with": {"hypothesis": hypothesis.__version__},
        "count": len(entries),
        "digest": f"sha256:{digest}",
        "features": FEATURES,
        "allowances": ALLOWANCES,
        "vectors": entries,
    }
    validate("manifest", manifest)
    files[MANIFEST] = json.dumps(manifest, indent=1) + "\n"
    return files


def corpus_files(directory: Path) -> dict[str, str]:
    """The corpus on disk: every .json file under ``directory`` (relative path -> text)."""
    return {
        path.relative_to(directory).as_posix(): path.read_text()
        for path in sorted(directory.rglob("*.json"))
    }


def write(directory: Path, files: dict[str, str]) -> None:
    """Make ``directory`` hold exactly ``files`` (stale .json files are removed)."""
    for stale in set(corpus_files(directory)) - set(files) if directory.exists() else ():
        (directory / stale).unlink()
    for path, text in files.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
    for folder in sorted(directory.rglob("*"), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def differences(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """How the files on disk (``actual``) differ from what the generator makes."""
    found = [f"missing: {path}" for path in sorted(set(expected) - set(actual))]
    found += [f"not generated: {path}" for path in sorted(set(actual) - set(expected))]
    found += [
        f"differs: {path}"
        for path in sorted(set(expected) & set(actual))
        if expected[path] != actual[path]
    ]
    return found


def generate(
    directory: Path = DEFAULT_DIRECTORY,
    *,
    check: bool = False,
    report: Callable[[str], None] = print,
) -> int:
    """Write the corpus into ``directory`` (or, with ``check``, compare it); an exit status."""
    files = render(all_vectors())
    if check:
        found = differences(files, corpus_files(directory) if directory.exists() else {})
        for line in found[:50]:
            report(line)
        if found:
            report(f"{len(found)} differences: run `pgalloc vectors generate` to regenerate")
            return 1
        report(f"the corpus in {directory} is what the generator makes ({len(files) - 1} vectors)")
        return 0
    write(directory, files)
    report(f"wrote {len(files) - 1} vectors and {MANIFEST} to {directory}")
    return 0
