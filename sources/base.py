"""The ``Source`` contract every booking-system adapter implements.

An adapter is one class in its protocol's package (``sources/fhir/adapter.py``...)
registered in ``sources.adapters``. It receives everything from outside: its
``SourceConfig`` (common settings as fields, its protocol's typed ``options``),
and a ``SourceContext`` holding the app-wide aiohttp session
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
from typing import TYPE_CHECKING, ClassVar, TypeAlias, TypeVar

from sources.errors import ConfigError
from sources.records import SlotCheck, SlotState
from sources.settings import (
    DEFAULT_CACHE_STALE_S,
    DEFAULT_CACHE_TTL_S,
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TIMEOUT_S,
    ProtocolOptions,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    import aiohttp

    from sources.records import (
        ClinicQuery,
        ClinicRecord,
        PhysicianQuery,
        PhysicianRecord,
        SlotQuery,
        SlotRecord,
        SlotResult,
        SourceProblem,
        SourceProtocol,
        SourceStatus,
    )

# Stands for "the protocol's defaults" until __post_init__ knows the protocol.
_DEFAULT_OPTIONS = ProtocolOptions()

OptionsT = TypeVar("OptionsT", bound=ProtocolOptions)


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceConfig:
    """One booking source, in the one shape it has from the config file (or the CLI,
    or a registry row) to its adapter: common settings as fields, the protocol's own
    settings as its typed ``options`` (``sources.adapters.options_for``).

    ``credentials_env`` names the environment variable holding the secret;
    ``credentials`` is that secret, filled in by ``SourceStore.configs`` and never
    stored. An empty ``name`` is the ``id``; omitted ``options`` are the protocol's
    defaults. ``sources.registry.definition.parse_definition`` checks untyped input.

        SourceConfig(id="clinique-a", protocol=SourceProtocol.REST_JSON,
                     url="https://api.clinique-a.example/v1",
                     credentials_env="CLINIQUE_A_API_KEY",
                     options=RestJsonOptions(page_size=100))
    """

    id: str
    name: str = ""
    protocol: SourceProtocol
    url: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    enabled: bool = True
    credentials_env: str | None = None
    connect_timeout_s: float | None = None
    """None: ``DEFAULT_CONNECT_TIMEOUT_S``; never above ``timeout_s``."""
    read_timeout_s: float | None = None
    """None: ``timeout_s``, for each read of an answer."""
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    cache_ttl_s: float = DEFAULT_CACHE_TTL_S
    cache_stale_s: float = DEFAULT_CACHE_STALE_S
    options: ProtocolOptions = field(default=_DEFAULT_OPTIONS, hash=False)
    credentials: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from sources.adapters import options_for

        if not self.name:
            object.__setattr__(self, "name", self.id)
        model = options_for(self.protocol)
        if self.options is _DEFAULT_OPTIONS:
            object.__setattr__(self, "options", model())
        elif type(self.options) is not model:
            raise ConfigError(
                f"source {self.id!r}: the options of a {self.protocol.value} source are "
                f"{model.__name__}, got {type(self.options).__name__}"
            )

    @property
    def effective_connect_timeout_s(self) -> float:
        """How long to wait for a connection (default 1 s, never above ``timeout_s``)."""
        return min(self.connect_timeout_s or DEFAULT_CONNECT_TIMEOUT_S, self.timeout_s)

    @property
    def effective_read_timeout_s(self) -> float:
        """How long to wait for each read of an answer (default ``timeout_s``)."""
        return min(self.read_timeout_s or self.timeout_s, self.timeout_s)

    def options_as(self, model: type[OptionsT]) -> OptionsT:
        """The options, typed as the adapter's model (checked on construction)."""
        if type(self.options) is not model:
            raise ConfigError(f"source {self.id!r}: options are not {model.__name__}")
        return self.options


# What a load of a source's copy changed: by clinic local id, the starts (UTC epoch
# seconds) of the slots that differ, or None for any of that clinic's slots; None as a
# whole when anything may have changed (``SlotIndex.changed_since``).
CopyChanges: TypeAlias = Mapping[str, frozenset[int] | None]


def _nobody(changes: CopyChanges | None = None) -> None:
    """Nobody listens for this source's loads."""


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What the gateway hands every adapter. ``copy_loaded``: for a source serving its
    own copy (a bulk feed), to call after each load of it, so that what watches the
    source (``sources.watch``) reads its copy again at once; with what changed
    (``CopyChanges``), or None when it cannot say: a watcher then reads only that
    again."""

    session: aiohttp.ClientSession
    logger: logging.Logger
    copy_loaded: Callable[[CopyChanges | None], None] = _nobody


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
        self.copy_loaded = context.copy_loaded

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

    async def check_slot(self, slot: SlotRecord) -> SlotCheck:
        """Whether ``slot`` (one this source listed) is still free, asked of the source
        now, never from a cache: ``FREE``/``GONE`` with when that held, ``UNKNOWN`` when
        the source cannot be asked about one slot (the default). ``SourceError`` when
        it cannot be reached."""
        return SlotCheck(SlotState.UNKNOWN)

    async def start(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Begin background work (a bulk feed's polling); called once after construction."""

    async def ready(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Return once the adapter can answer (a bulk feed: its first load attempted)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Stop background work and release what the adapter holds (not the shared session)."""

    async def probe(self) -> list[str]:
        """Check now what the upstream can do, for operators (``sources probe``): one
        line per thing learnt; ``SourceError`` when it cannot be reached. Adapters
        that learn nothing of their upstream answer nothing."""
        return []

    def status_hint(self) -> SourceStatus | None:
        """The adapter's own view of its health, or None to judge by the calls' outcomes.

        A bulk source, which answers from its own copy, says ``DEGRADED`` until its
        first load completes and while it serves an older copy because its last
        refresh failed, and ``UP`` otherwise (``sources.pool.health``).
        """
        return None

    @property
    def data_as_of(self) -> datetime | None:
        """When the data this source serves was current, for sources serving a copy."""
        return None

    @property
    def last_success_at(self) -> datetime | None:
        """For a source serving its own copy (a bulk feed): when its upstream last
        answered a refresh. None: the pool judges by the calls it makes."""
        return None

    @property
    def probed_at(self) -> datetime | None:
        """When the adapter's own probe of its upstream last answered (a FHIR server's
        capabilities, learnt at start and every few minutes); None for adapters that do
        not probe, and while the last probe has not answered. A source that answered its
        probe has answered: the pool reads it ``UP`` before any search has called it."""
        return None

    @property
    def physician_count(self) -> int | None:
        """How many physicians the source lists, when it knows (a bulk feed's copy);
        None: unknown."""
        return None

    @property
    def latency_ms(self) -> float | None:
        """For a source serving its own copy: how long its upstream took to answer that
        refresh. None: the pool measures its calls."""
        return None

    @property
    def cache_generation(self) -> str:
        """Changes when the adapter learns something that makes its earlier answers
        untrustworthy (a server found not to sort, or not to page): the source cache
        keys on it, so answers cached before are not served after."""
        return ""

    @property
    def problems(self) -> tuple[SourceProblem, ...]:
        """What an operator should fix about this source now (``sources.problems``): a
        ``LOSS`` makes it ``DEGRADED``, a ``WARNING`` leaves its status alone."""
        return ()

    @property
    def skipped_records(self) -> int | None:
        """Records skipped as malformed in the last load, for sources that load feeds."""
        return None

    @property
    def refresh_interval_s(self) -> float | None:
        """How often a source serving its own copy refreshes it (None: it does not)."""
        return None
