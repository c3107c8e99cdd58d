"""The HTTP edge's ASGI middleware, one per file, as starlette's ``middleware/``.

``body_limit`` (``BodyLimit``: a 413 past 100 KB), ``csrf`` (``CSRFPrevention``),
``rate_limit`` (``RateLimits``, and the guard and token buckets behind it),
``response_cache`` (``ResponseCacheLookup``: a cached answer, or its key carried
on; the store; ``remember``, which the view calls) and ``cached_hits``
(``HitResponse``, the one way a cached answer goes out, and ``CachedHits``, the
fast path for anonymous GETs in front of Starlette), ``request_log`` (``RequestLog``,
outermost: ``X-Request-Id`` and one log line per request).

May import ``edge.operation``, ``edge.exchange``, ``edge.services``,
``schema.error_codes`` and the key/value stores of ``sources``; never the view,
the steps (``edge.pipeline``) or the documents (``edge.documents``), which run
after them.
"""

from edge.middleware.body_limit import BodyLimit
from edge.middleware.cached_hits import CachedHits, HitResponse
from edge.middleware.csrf import CSRFPrevention
from edge.middleware.rate_limit import RateGuard, RateLimiter, RateLimits
from edge.middleware.request_log import RequestLog
from edge.middleware.response_cache import ResponseCache, ResponseCacheLookup

__all__ = [
    "BodyLimit",
    "CSRFPrevention",
    "CachedHits",
    "HitResponse",
    "RateGuard",
    "RateLimiter",
    "RateLimits",
    "RequestLog",
    "ResponseCache",
    "ResponseCacheLookup",
]
