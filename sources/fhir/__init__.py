"""The HL7 FHIR R4 scheduling adapter: ``Location``, ``PractitionerRole``,
``Schedule`` and free ``Slot`` searches (``adapter``), the R4 resources read into
our records (``resources``, shared with the SMART Scheduling Links feeds) and the
search results assembled (``found``).

May import the contract (``sources.base``, ``records``, ``errors``, ``geo``,
``timeutil``) and ``sources.transport``; never the pool, search or registry.
"""
