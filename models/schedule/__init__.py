"""A controlled scheduler over the real allocator's threads (Loom, Shuttle, CHESS, for impl).

Read in this order:

* :mod:`models.schedule.scheduler` — real threads run one at a time; scheduling points;
* :mod:`models.schedule.runtime` — impl's runtime seam, controlled;
* :mod:`models.schedule.strategies` — random, PCT, replay, bounded exhaustive;
* :mod:`models.schedule.program` — what the client threads do;
* :mod:`models.schedule.properties` — what must hold at each point and at quiescence;
* :mod:`models.schedule.run` — one run, every check;
* :mod:`models.schedule.search` — many runs, shrinking, the readable trace;
* :mod:`models.schedule.checks` — ``pgalloc check``'s entry.
"""
