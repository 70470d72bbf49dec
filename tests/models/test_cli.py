"""The command line: checks found by name, lean starts, and the usage errors it reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from models import check, cli, spec_checks
from models.conformance.checks import driver_command

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("z3", "models.proofs", "models.explore", "models.stateful", "models.linearizability")
"""What the porter's commands must not import: z3, the proofs and the other checkers."""


def test_every_registered_check_is_found_by_its_name() -> None:
    names = [entry.name for entry in check.REGISTRY]
    assert len(set(names)) == len(names)
    for name in names:
        assert check.find(name).name == name


def test_a_check_is_found_by_name_not_position(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec_checks, "CHECKS", list(reversed(spec_checks.CHECKS)))
    assert check.find("spec-workload").name == "spec-workload"
    assert check.find("spec-self-check").name == "spec-self-check"
    workload_only = [c for c in spec_checks.CHECKS if c.name == "spec-workload"]
    monkeypatch.setattr(spec_checks, "CHECKS", workload_only)
    with pytest.raises(check.UnknownCheck, match="holds no check named spec-self-check"):
        check.find("spec-self-check")
    with pytest.raises(check.UnknownCheck, match=r"no check named nope \(there are: spec-"):
        check.entry("nope")


def _modules_after(code: str, stdin: str = "") -> set[str]:
    """The modules a fresh interpreter has imported after running ``code``."""
    script = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)), file=sys.stderr)"
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    return set(done.stderr.strip().splitlines()[-1].split())


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] == "z3" or m.startswith(HEAVY))


HELLO = '{"id": 0, "op": "hello", "protocol": 1}\n'


@pytest.mark.parametrize(
    "argv",
    [
        ["driver", "spec"],
        ["driver", "impl"],
        ["vectors", "replay", "--driver", " ".join(driver_command("impl")), "--vectors",
         str(ROOT / "vectors" / "alloc")],
        ["conform", "--budget", "1", "--driver", " ".join(driver_command("spec"))],
    ],
    ids=["driver-spec", "driver-impl", "replay", "conform"],
)  # fmt: skip
def test_the_porters_commands_import_neither_z3_nor_the_proofs(argv: list[str]) -> None:
    modules = _modules_after(f"from models.cli import main\nmain({argv!r})", HELLO)
    assert "models.conformance.port" in modules  # the command did run
    assert _heavy(modules) == []


def test_help_imports_only_the_command_line() -> None:
    modules = _modules_after("from models import cli\ncli.parser().format_help()")
    ours = sorted(m for m in modules if m.split(".")[0] in ("models", "spec", "impl"))
    assert ours == ["models", "models.cli", "models.conformance", "models.conformance.protocol"]
    assert not {"jsonschema", "hypothesis", "z3"} & {m.split(".")[0] for m in modules}


def test_the_heavy_check_is_noticed() -> None:
    """The lean-start test has teeth: the check registry's lookup of proofs loads z3."""
    assert "z3" in {
        m.split(".")[0] for m in _modules_after("from models import check\ncheck.find('proofs')")
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        ([], "choose a command"),
        (["vectors"], "choose generate, replay, coverage or mutation"),
        (["conform", "--driver", "x", "--timeout", "0"], "--timeout: must be positive, not 0"),
        (["check", "--budget", "-1"], "--budget: must be positive, not -1"),
        (["check", "--shard", "3/2"], "--shard: K/M needs 1 <= K <= M, not 3/2"),
        (["check", "--jobs", "0"], "--jobs: must be at least 1, not 0"),
        (["vectors", "replay", "--driver", "x", "--max-failures", "0"], "must be at least 1"),
    ],
)
def test_usage_errors_say_what_is_wrong(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_unknown_check_names_the_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--only", "nope"]) == 2
    assert "no check named nope (there are: spec-self-check, " in capsys.readouterr().err


def test_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, defaults in (
        (["check"], ["(default: 60)"]),
        (["vectors", "replay"], ["(default: 10)", "(default: 3)", "the corpus this installation"]),
        (["conform"], ["(default: 60)", "(default: 10)", "(default: 3)"]),
    ):
        with pytest.raises(SystemExit):
            cli.main([*argv, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert all(default in text for default in defaults), (argv, text)
