"""z3 proofs that the seed's range search is the specification's, for every 64-bit input.

Read in this order:

* :mod:`models.proofs.smt` — the one typed wrapper around z3;
* :mod:`models.proofs.preconditions` — the inputs the proofs quantify over;
* :mod:`models.proofs.seed` — the seed's ``findAvailableRange``, step by step,
  with the seed's widths (and the weakened variants that show the proofs'
  teeth);
* :mod:`models.proofs.symbolic` — running ``spec.ranges``' own code on z3 words;
* :mod:`models.proofs.declarative` — ``spec.ranges`` in exact arithmetic, so run;
* :mod:`models.proofs.spec_lemmas` — that run is exact, and the alignment rule is the seed's;
* :mod:`models.proofs.obligation`, :mod:`models.proofs.cases` — what a lemma
  is, how it is discharged, and how a counterexample becomes a concrete input;
* :mod:`models.proofs.gap_lemmas`, :mod:`models.proofs.growth_lemmas` — the
  step lemmas of the two loops (each loop by induction, never unrolled);
* :mod:`models.proofs.bounded` — the whole function for small usage sets;
* :mod:`models.proofs.suite` — all of them in order, and the ``proofs`` check.

``docs/proofs.md`` says how the lemmas compose into the theorem.
"""

from models.proofs.suite import CHECKS

__all__ = ["CHECKS"]
