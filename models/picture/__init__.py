"""Pictures of the file: a vector, a divergence or a counterexample, step by step.

Everything is drawn from the observation schema alone, so a picture works for
any port's responses, and every string in it is escaped. Read in this order:

* :mod:`models.picture.observation` — an observation, checked against the schema, typed;
* :mod:`models.picture.trace` — what a picture shows: frames (a step and the state after it),
  from a vector or a divergence;
* :mod:`models.picture.counterexamples` — the model checker's and the linearizability
  checker's counterexamples as traces, one lane per thread;
* :mod:`models.picture.diff` — every differing field and byte range of two observations;
* :mod:`models.picture.scale` — the piecewise scale that keeps small ranges visible;
* :mod:`models.picture.page` — the HTML writer (inline SVG, no external reference);
* :mod:`models.picture.text` — the terminal writer, one line per step;
* :mod:`models.picture.show` — ``pgalloc show`` and the divergence pictures of the runner.
"""
