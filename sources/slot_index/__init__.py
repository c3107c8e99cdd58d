"""A compact, columnar index of free slots, for adapters that serve from a local
copy (the SMART Scheduling Links feeds): ``index`` (``SlotIndex``, the entry
point), ``columns`` (the column store), ``build`` and ``splice`` (whole loads and
deltas), ``query`` (searches), ``records`` (rows back into records), ``grid``
(clinics by position) and ``texts`` (booking links and phones, packed).

May import the contract only (``sources.records``, ``geo``, ``timeutil``).
"""
