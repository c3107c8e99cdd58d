"""Searches merged across sources: cross-source identity of clinics, physicians
and slots (``merge``), and the federated searches with keyset paging, widening
and ``nextSlots`` batching (``federation``).

May import the contract and ``sources.pool``; never an adapter's package, nor
``registry``.
"""

from sources.search.federation import (
    ClinicSearch,
    Federation,
    FoundClinic,
    FoundSlot,
    SlotPage,
    SlotPosition,
    SlotSearch,
)
from sources.search.merge import MergedClinic, MergedPhysician, SlotKey

__all__ = [
    "ClinicSearch",
    "Federation",
    "FoundClinic",
    "FoundSlot",
    "MergedClinic",
    "MergedPhysician",
    "SlotKey",
    "SlotPage",
    "SlotPosition",
    "SlotSearch",
]
