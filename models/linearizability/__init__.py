"""Linearizability of the real allocator under concurrent use, against the spec.

Several threads use one ``impl.MemoryFile`` while its reclaimer and eviction
threads run; every call, and every step of those threads, is recorded with
its result and its start and end times. The history is then searched for a
linearization: an order of the operations, consistent with real time, in
which the specification, applied one operation at a time, returns exactly
what each call returned (Wing & Gong's search, with Lowe's memo of visited
states, as Porcupine and Knossos do).

* :mod:`~models.linearizability.history` — operations, and recording them;
* :mod:`~models.linearizability.model` — the spec as the sequential model;
* :mod:`~models.linearizability.search` — the search for a linearization;
* :mod:`~models.linearizability.stress` — the threads, the run, the checks after it;
* :mod:`~models.linearizability.checks` — ``pgalloc check``'s entry.
"""
