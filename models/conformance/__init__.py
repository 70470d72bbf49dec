"""The conformance oracle for other ports of pgalloc: protocol, vectors, runner, drivers.

A port (in any language) is wrapped in a driver speaking JSON lines
(:mod:`~models.conformance.driver`, schemas in ``schemas/``); the corpus of
vectors under ``vectors/`` is replayed through it
(:mod:`~models.conformance.replay`), and ``pgalloc conform`` compares it
with the specification on random sequences
(:mod:`~models.conformance.conform`). Read ``docs/conformance.md`` first.

Modules, in reading order: ``protocol`` (versions, features, error codes,
allowances), ``codec`` and ``schema`` (the messages), ``port``,
``spec_port``, ``impl_port`` and ``driver`` (the driver side), ``process``
and ``compare`` (the runner side), ``vector``, ``recorder``,
``scenarios``, ``actions`` and ``generate`` (the corpus), ``replay``,
``conform``, ``coverage_run``, ``mutants``, ``commands`` and ``checks``.

Nothing is imported here, so that ``python -m models.conformance.driver``
and the coverage run start lean.
"""
