"""The ``Source`` contract every booking-system adapter implements.

An adapter is one class in its protocol's package (``sources/fhir/adapter.py``...)
registered in ``sources.adapters``. It receives everything from outside: its
``SourceConfig``, and a ``SourceContext`` holding the app-wide aiohttp session
and a logger named after the source. It never opens a session nor reads global
settings, and it returns only the normalized records of ``sources.records``.

    class MySource(Source):
        protocol = SourceProtocol.REST_JSON

        async def search_slots(self, query: SlotQuery) -> SlotResult: ...
        async def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]: ...
        async def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]: ...

Adapters raise only ``sources.errors.SourceError`` subclasses.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from datetime import datetime

    import aiohttp

    from sources.records import (
        ClinicQuery,
        ClinicRecord,
        PhysicianQuery,
        PhysicianRecord,
        SlotQuery,
        SlotResult,
        SourceProtocol,
        SourceStatus,
    )


DEFAULT_CONNECT_TIMEOUT_S = 1.0
# Calls in flight to one source at once (a bulkhead: one slow source cannot take
# every connection); the default when a source does not say.
DEFAULT_MAX_CONCURRENCY = 10


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One registered booking source, as the registry holds it.

    ``credentials`` is the resolved secret (read from the environment variable
    the registry names), never stored in a file or the database.
    ``options`` holds protocol-specific settings.
    """

    id: str
    name: str
    protocol: SourceProtocol
    url: str
    timeout_s: float = 2.0
    enabled: bool = True
    credentials: str | None = field(default=None, repr=False)
    options: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def connect_timeout_s(self) -> float:
        """How long to wait for a connection (default 1 s, never above ``timeout_s``)."""
        return min(self._seconds("connect_timeout_s", DEFAULT_CONNECT_TIMEOUT_S), self.timeout_s)

    @property
    def read_timeout_s(self) -> float:
        """How long to wait for each read of an answer (default ``timeout_s``)."""
        return min(self._seconds("read_timeout_s", self.timeout_s), self.timeout_s)

    def _seconds(self, key: str, default: float) -> float:
        value = self.options.get(key)
        return float(value) if isinstance(value, int | float) and value > 0 else default


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What the gateway hands every adapter."""

    session: aiohttp.ClientSession
    logger: logging.Logger


class Source(ABC):
    """Base class of the adapters. See the module docstring."""

    protocol: ClassVar[SourceProtocol]
    # Whether the gateway's cache may keep this source's answers; False for a
    # source that answers from its own in-memory copy (a bulk feed).
    cache_answers: ClassVar[bool] = True

    def __init__(self, config: SourceConfig, context: SourceContext) -> None:
        self.config = config
        self.session = context.session
        self.logger = context.logger

    @property
    def id(self) -> str:
        return self.config.id

    @abstractmethod
    async def search_slots(self, query: SlotQuery) -> SlotResult:
        """Free slots matching ``query``, ordered by start, at least ``query.limit``
        of them unless the result is ``complete``."""

    @abstractmethod
    async def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]:
        """Every clinic matching ``query`` (following upstream paging)."""

    @abstractmethod
    async def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        """Physicians by this source's ids, by identifier, or working at given clinics."""

    async def start(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Begin background work (a bulk feed's polling); called once after construction."""

    async def ready(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Return once the adapter can answer (a bulk feed: its first load attempted)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Stop background work and release what the adapter holds (not the shared session)."""

    def status_hint(self) -> SourceStatus | None:
        """The adapter's own view of its health, or None to judge by the calls' outcomes.

        A bulk source says ``DEGRADED`` until its first load completes, and while it
        serves an older copy because its last refresh failed.
        """
        return None

    @property
    def data_as_of(self) -> datetime | None:
        """When the data this source serves was current, for sources serving a copy."""
        return None

    @property
    def skipped_records(self) -> int | None:
        """Records skipped as malformed in the last load, for sources that load feeds."""
        return None
