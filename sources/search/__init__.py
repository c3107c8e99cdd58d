"""Searches merged across sources: cross-source identity of clinics, physicians
and slots (``merge``), and the federated searches with keyset paging, widening
and ``nextSlots`` batching (``federation``).

May import the contract and ``sources.pool``; never an adapter's package, nor
``registry``.
"""
