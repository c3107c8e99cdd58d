"""Searches merged across sources: cross-source identity of clinics and physicians
(``merge``) and of slots (``identity``), and the federated searches with keyset paging, widening
and ``nextSlots`` batching (``federation``), over the values they take and give
(``results``).

May import the contract and ``sources.pool``; never an adapter's package, nor
``registry``.
"""

from sources.search.federation import Federation
from sources.search.identity import SlotIdentity
from sources.search.merge import MergedClinic, MergedPhysician
from sources.search.results import (
    CountKind,
    FoundClinic,
    FoundSlot,
    SlotCount,
    SlotPage,
    SlotPosition,
)

__all__ = [
    "CountKind",
    "Federation",
    "FoundClinic",
    "FoundSlot",
    "MergedClinic",
    "MergedPhysician",
    "SlotCount",
    "SlotIdentity",
    "SlotPage",
    "SlotPosition",
]
