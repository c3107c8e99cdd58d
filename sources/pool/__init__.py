"""The live sources and what wraps each call to them: ``fanout`` (``SourcePool``:
adapters in registry order, the deadline, and ``fan_out``), ``bulkhead`` (calls in
flight per source; the watch's background calls never in a request's way),
``health`` (the one health model: a source's status, from the breaker, the
adapter and its recent calls), ``breaker`` (the circuit breaker, purgatory),
``cache`` (the cross-request source cache: TTLs, stale-while-revalidate,
single-flight), ``reads`` (every source call as a ``Read`` value the cache
can key) and ``tracing`` (the seam through which the edge traces each read, when
tracing is on).

May import the contract, ``sources.adapters``, ``sources.kv`` and
``sources.transport``; never ``search`` or ``registry``.
"""

from sources.pool.cache import SourceCache, answer_ttl_s
from sources.pool.fanout import SourcePool
from sources.pool.views import SourceView

__all__ = ["SourceCache", "SourcePool", "SourceView", "answer_ttl_s"]
