"""Booking sources: the contract, one package per protocol, and what runs around them.

- the contract: ``base`` (``Source``, ``SourceConfig``, ``SourceContext``),
  ``settings`` (the common settings' defaults and bounds, the base of each
  protocol's typed options), ``records`` (the normalized records every adapter
  returns), ``errors`` (the exception tree), with ``geo``, ``time_zones`` (each
  clinic's IANA zone) and ``timeutil``;
  ``adapters`` maps each protocol to its adapter and options (one line per protocol);
- the adapters: ``fhir/``, ``rest_json/``, ``smart_scheduling/`` (and the
  ``slot_index/`` that bulk feeds answer from), over the shared ``transport/``;
- around them: ``pool/`` (the live adapters with their breaker, bulkhead, cache
  and deadline), ``kv/`` (the in-process and Redis key/value layer), ``search/``
  (searches merged across sources) and ``registry/`` (where sources and partner
  clients are defined and stored).

Nothing here knows GraphQL or HTTP serving: ``resolvers``, ``schema`` and ``edge``
call into this package, never the reverse (the import contracts in
``pyproject.toml`` say exactly who may import what).
"""
