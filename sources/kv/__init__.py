"""The key/value layer: entries kept in this process or in Redis (shared by every
instance), behind one ``CacheBackend`` interface (``backends``): ``MemoryBackend``
(``memory``) and ``RedisBackend`` (``shared``), the latter over the gateway's one
``RedisLink`` (``link``: the only Redis client factory, and the one outage pause).
Used by the source cache, automatic persisted queries, the response cache and the
rate limits; the slot alerts' leases and channels (``lease``) use the same link.

Imports nothing else of the project.
"""

from sources.kv.backends import CacheBackend, CacheUnavailable, Entry
from sources.kv.link import RedisLink
from sources.kv.memory import MemoryBackend
from sources.kv.shared import RedisBackend

__all__ = [
    "CacheBackend",
    "CacheUnavailable",
    "Entry",
    "MemoryBackend",
    "RedisBackend",
    "RedisLink",
]
