"""The SMART Scheduling Links bulk-feed adapter: the manifest polled
(``manifest``), its NDJSON files fetched (``http``, ``files``) and parsed
(``feed``), loaded into a ``sources.slot_index`` (``load``), and the adapter that
answers from it (``adapter``); ``sources check`` of a feed (``check``, counting
what a load reads in ``survey``, judging it in ``verdicts``).

May import the contract, ``sources.transport``, ``sources.slot_index`` and the
FHIR resource readers (``sources.fhir.resources``: a feed is FHIR resources);
never the pool, search or registry.
"""
