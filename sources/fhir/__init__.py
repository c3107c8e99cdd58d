"""The HL7 FHIR R4 scheduling adapter (``adapter``): what each server really does,
learnt by probes (``capabilities``); the plan a slot search follows on it (``plan``)
and its reading (``slots``); the HTTP side and a search's pages, by next link or
``_offset`` (``client``); whole searches and reads by ``_id`` (``fetch``); the
source's clinics kept whole (``directory``); the R4 resources read into our records
(``resources``, shared with the SMART Scheduling Links feeds) and the search results
assembled (``found``); ``sources check``'s checks of a server (``check``, with the probes'
``verdicts`` and the slots' ``tally``).

May import the contract (``sources.base``, ``records``, ``errors``, ``problems``,
``geo``, ``time_zones``, ``timeutil``) and ``sources.transport``; never the pool, search
or registry.
"""
