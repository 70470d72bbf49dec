"""Every proof, run in order, and the ``proofs`` check of ``pgalloc check``."""

from __future__ import annotations

import functools
import time

from models.check import Check, CheckResult, Progress
from models.proofs import bounded, gap_lemmas, growth_lemmas, spec_lemmas
from models.proofs.obligation import Lemma, LemmaResult, Verdict, discharge
from models.proofs.seed import Weakening

LEMMAS: list[Lemma] = [
    Lemma("spec-arithmetic-exact", spec_lemmas.spec_arithmetic_exact),
    Lemma("alignment-rule-agrees", spec_lemmas.alignment_rule_agrees),
    Lemma("gap-step-agrees", gap_lemmas.gap_step_agrees),
    Lemma("gap-step-highest-fit", gap_lemmas.gap_step_highest_fit),
    Lemma("gap-loop-invariant", gap_lemmas.gap_loop_invariant),
    Lemma("growth-entry-agrees", growth_lemmas.growth_entry_agrees),
    Lemma("growth-doubling-agrees", growth_lemmas.growth_doubling_agrees),
    Lemma("growth-body-agrees", growth_lemmas.growth_body_agrees),
    Lemma("growth-terminates", growth_lemmas.growth_terminates),
    Lemma("growth-file-size", growth_lemmas.growth_file_size),
    *(
        Lemma(f"whole-search-{n}-ranges", functools.partial(bounded.whole_search, n))
        for n in range(bounded.MAX_RANGES + 1)
    ),
]
"""The spec's own code (exact arithmetic, the alignment rule), the step lemmas, then the
bounded whole-function checks."""


def prove_all(
    weakening: Weakening = Weakening.NONE, progress: Progress | None = None
) -> list[LemmaResult]:
    """Discharge every lemma for ``weakening`` of the seed, in order."""
    results = []
    for lemma in LEMMAS:
        result = discharge(lemma, weakening)
        if progress is not None:
            progress(f"proofs: {result.lemma} {result.verdict.value} ({result.seconds:.2f} s)")
        results.append(result)
    return results


def run_proofs(budget: float, progress: Progress) -> CheckResult:
    """The ``proofs`` check: every lemma must be proved (the budget does not apply)."""
    started = time.monotonic()
    results = prove_all(progress=progress)
    proved = [result for result in results if result.verdict is Verdict.PROVED]
    solver_seconds = sum(result.seconds for result in results)
    failed = [
        f"{result.summary()}\n  the lemma: {lemma.statement}"
        for lemma, result in zip(LEMMAS, results, strict=True)
        if result.verdict is not Verdict.PROVED
    ]
    detail = (
        "\n".join(failed)
        if failed
        else f"{len(proved)} lemmas proved, {solver_seconds:.1f} s of solver time"
    )
    return CheckResult(
        "proofs",
        not failed,
        len(proved),
        "lemmas",
        time.monotonic() - started,
        detail,
    )


CHECKS: list[Check] = [
    Check(
        "proofs",
        "z3: the seed's findAvailableRange equals spec.ranges for every 64-bit input",
        run_proofs,
    )
]
