"""The key/value layer: values kept in this process or in Redis (shared by every
instance), behind one ``CacheBackend`` interface (``backends``). Used by the
source cache, automatic persisted queries and the response cache.

Imports nothing else of the project.
"""

from sources.kv.backends import CacheBackend, CacheUnavailable, Entry, MemoryBackend, RedisBackend

__all__ = ["CacheBackend", "CacheUnavailable", "Entry", "MemoryBackend", "RedisBackend"]
