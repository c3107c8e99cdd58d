"""Concurrent calls to every source, each bounded by its own timeout.

``SourcePool`` holds the live adapters, in registry order, and their health
(judged by ``sources.pool.health``);
``fan_out`` calls a coroutine on several sources at once and returns what the
healthy ones answered plus one ``SourceError`` per failed source. A failing,
hanging or buggy adapter never breaks the call: its failure becomes data.

Reads given a ``gate`` are background calls (the watch's, ``sources.watch``): made
once the gate lets them, never from the cache nor retried, and only when the
source's bulkhead has a slot free (``sources.pool.bulkhead``: a request never
waits for them); else they answer ``SourceBusy``. ``on_copy_loaded`` tells
listeners each time a source serving its own copy (a bulk feed) has loaded it.

The module stays whole (past 400 lines): ``SourcePool`` is one class, holding the
adapters and what every call to them goes through (breakers, bulkheads, cache, health).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Generic, TypeVar

from sources.adapters import adapter_for
from sources.base import CopyChanges, SourceConfig, SourceContext
from sources.errors import (
    ConfigError,
    SourceBadResponse,
    SourceBusy,
    SourceError,
    SourceRefusedRequest,
    SourceTimeout,
    SourceUnavailable,
)
from sources.pool.breaker import CircuitOpen, SourceBreakers
from sources.pool.bulkhead import Bulkhead
from sources.pool.cache import CachePolicy, Served, SourceCache
from sources.pool.health import SourceHealth, merge_problems, pool_problems, source_status
from sources.pool.phantoms import PhantomTally
from sources.pool.tracing import CACHE_BYPASS, CACHE_NONE
from sources.pool.views import SourceView as SourceView  # where it was
from sources.pool.views import ViewKeeper, Views
from sources.records import SourceProblem
from sources.transport.retry import CALL_DEADLINE, CALL_RETRIES, CALL_STATS, CallStats

if TYPE_CHECKING:
    import aiohttp

    from sources.base import Source
    from sources.pool.reads import Read
    from sources.pool.tracing import SourceCallTracer

T = TypeVar("T")
logger = logging.getLogger("passerelle.sources")

# What a background call awaits before it is made: its turn (``sources.watch``).
Gate = Callable[["Source"], Awaitable[None]]

# A replaced or removed adapter is closed this long after, once the requests
# that took it have finished.
RETIRE_AFTER_S = 30.0


@dataclass(frozen=True, slots=True)
class FanOutResult(Generic[T]):
    results: dict[str, T]
    errors: list[SourceError]
    # How each answer was served: from the cache or not, and how old.
    served: dict[str, Served[T]] = field(default_factory=dict)


def _build_adapter(config: SourceConfig, context: SourceContext) -> Source:
    return adapter_for(config.protocol)(config, context)


class SourcePool:
    """The live adapters, rebuilt from registry configs without a restart.

    ``sync(configs)`` keeps the adapter of every source whose config did not
    change, builds the new ones and closes the removed ones. Readers take
    ``pool.enabled`` (an immutable tuple) once per request.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        factory: Callable[[SourceConfig, SourceContext], Source] | None = None,
        cache: SourceCache | None = None,
    ) -> None:
        self._session = session
        # Without a cache backend, identical concurrent reads are still collapsed.
        self.cache = cache or SourceCache(None)
        self._factory = factory or _build_adapter
        self._configs: tuple[SourceConfig, ...] = ()
        self._adapters: dict[str, Source] = {}
        self._health: dict[str, SourceHealth] = {}
        self.enabled: tuple[Source, ...] = ()
        self.order: dict[str, int] = {}
        self.fingerprint = ""
        self._bulkheads: dict[str, Bulkhead] = {}
        self.breakers = SourceBreakers()
        self.phantoms = PhantomTally()  # hand-offs found gone, by source
        self._retiring: set[asyncio.Task[None]] = set()
        self._load_listeners: list[Callable[[str, CopyChanges | None], None]] = []
        # A span per read when tracing is on (``sources.pool.tracing``: set by the edge).
        self.tracer: SourceCallTracer | None = None
        # The views last built, kept until a source changes (``sources.pool.views``).
        self._views = ViewKeeper()

    async def sync(self, configs: Sequence[SourceConfig]) -> None:
        old = self._adapters
        adapters: dict[str, Source] = {}
        for config in configs:
            current = old.get(config.id)
            if current is not None and current.config == config:
                adapters[config.id] = current
                continue
            adapter = await self._build(config)
            if adapter is not None:
                adapters[config.id] = adapter
        self._configs = tuple(configs)
        self._adapters = adapters
        self._views.changed()
        self._health = {c.id: self._health.get(c.id, SourceHealth()) for c in configs}
        self._bulkheads = {
            sid: self._bulkheads[sid]
            if old.get(sid) is a
            else Bulkhead(a.config.max_concurrency, self._health[sid].waited)
            for sid, a in adapters.items()
        }
        self.order = {c.id: i for i, c in enumerate(configs)}
        # Names the set of sources answering now: what a shared cache of whole
        # responses must key on, so that deployments with other sources never mix.
        self.fingerprint = hashlib.sha256(
            "\n".join(f"{c.id} {c.url}" for c in configs if c.enabled).encode()
        ).hexdigest()[:16]
        self.enabled = tuple(adapters[c.id] for c in configs if c.enabled and c.id in adapters)
        retired = [a for sid, a in old.items() if adapters.get(sid) is not a]
        if retired:
            # Requests already running still hold the old adapters: close them later.
            task = asyncio.create_task(self._retire(retired))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait, at most ``timeout_s``, for every enabled source to be able to answer."""
        waits = [asyncio.ensure_future(s.ready()) for s in self.enabled]
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=timeout_s)
        for task in pending:
            task.cancel()
        late = [s.id for s, t in zip(self.enabled, waits, strict=True) if t in pending]
        if late:
            logger.warning("still loading after %.0f s, serving without: %s", timeout_s, late)

    async def _build(self, config: SourceConfig) -> Source | None:
        """A started adapter, or None (logged) when its config or its start fails."""
        context = SourceContext(
            self._session, logger.getChild(config.id), partial(self._copy_loaded, config.id)
        )
        try:
            adapter = self._factory(config, context)
        except ConfigError as exc:
            logger.error("source %s not loaded: %s", config.id, exc)
            return None
        if config.enabled:
            try:
                await adapter.start()
            except Exception:
                logger.exception("source %s not loaded: its adapter failed to start", config.id)
                await self._close(adapter)
                return None
        return adapter

    def on_copy_loaded(
        self, listener: Callable[[str, CopyChanges | None], None]
    ) -> Callable[[], None]:
        """Call ``listener(source_id, changes)`` each time a source serving its own copy
        has loaded it (whichever adapter serves that id then), with what changed
        (``sources.base.CopyChanges``; None: anything may have); returns what
        unregisters it."""
        self._load_listeners.append(listener)
        return lambda: self._load_listeners.remove(listener)

    def _copy_loaded(self, source_id: str, changes: CopyChanges | None = None) -> None:
        self._views.changed()
        for listener in list(self._load_listeners):
            try:
                listener(source_id, changes)
            except Exception:
                logger.exception("a listener of source %s's loads failed", source_id)

    async def _retire(self, adapters: list[Source]) -> None:
        await asyncio.sleep(RETIRE_AFTER_S)
        for adapter in adapters:
            await self._close(adapter)

    @staticmethod
    async def _close(adapter: Source) -> None:
        try:
            await adapter.aclose()
        except Exception:
            logger.exception("source %s did not close cleanly", adapter.id)

    async def aclose(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        await self.cache.aclose()
        retiring = [a for a in self._adapters.values()]
        self._adapters = {}
        self.enabled = ()
        for adapter in retiring:
            await self._close(adapter)

    def health(self, source_id: str) -> SourceHealth:
        health = self._health.get(source_id)
        if health is None:  # not setdefault: a SourceHealth is four containers to make
            health = self._health[source_id] = SourceHealth()
            self._views.changed()
        return health

    def views(self) -> list[SourceView]:
        """Every registered source as the API shows it now, in registry order."""
        return list(self._taken().listed)

    def view_map(self) -> Mapping[str, SourceView]:
        """``views()`` by source id (one dict shared until a source changes: read it only)."""
        return self._taken().by_id

    def adapter_problems(self, source: Source) -> tuple[SourceProblem, ...]:
        """``source.problems`` as ``views()`` read them, when it is the adapter they were
        read of (else worked out now): what a search reads, without working it out again."""
        kept = self._taken().adapter_problems.get(source.id)
        if kept is not None and kept[0] is source:
            return kept[1]
        return source.problems

    def _taken(self) -> Views:
        return self._views.take(
            self._configs, self._adapters, self._health, self.breakers, self._build_views
        )

    def _build_views(self) -> Views:
        out = []
        own_problems: dict[str, tuple[Source, tuple[SourceProblem, ...]]] = {}
        for config in self._configs:
            health = self.health(config.id)
            adapter = self._adapters.get(config.id)
            circuit = self.breakers.status(config.id)
            enabled = config.enabled and adapter is not None
            problems: tuple[SourceProblem, ...] = ()
            # A source serving its own copy says when its upstream last answered.
            own = adapter if adapter is not None and adapter.last_success_at else None
            if enabled and adapter is not None:
                mine = adapter.problems
                own_problems[config.id] = (adapter, mine)
                problems = merge_problems(mine, pool_problems(circuit, health))
            probed_at = adapter.probed_at if adapter is not None else None
            status = source_status(
                enabled=enabled,
                circuit=circuit,
                hint=adapter.status_hint() if adapter is not None else None,
                health=health,
                problems=problems,
                probed=probed_at is not None,
            )
            answered = (own and own.last_success_at) or health.last_success_at
            if probed_at is not None and (answered is None or probed_at > answered):
                answered = probed_at
            out.append(
                SourceView(
                    id=config.id,
                    name=config.name,
                    protocol=config.protocol,
                    status=status,
                    last_success_at=answered,
                    latency_ms=own.latency_ms if own else health.latency_ms,
                    data_as_of=adapter.data_as_of if adapter is not None else None,
                    skipped_records=adapter.skipped_records if adapter is not None else None,
                    problems=problems,
                )
            )
        return Views(tuple(out), {v.id: v for v in out}, own_problems)

    async def fan_out(
        self,
        sources: Iterable[Source],
        read_for: Callable[[Source], Read[T]],
        budget_s: float | None = None,
        gate: Gate | None = None,
    ) -> FanOutResult[T]:
        """Read ``read_for(source)`` of every source concurrently, from the cache when
        it can, each within its timeout and within ``budget_s`` (what is left of the
        request's fan-out deadline); with a ``gate``, as background calls."""
        sources = list(sources)
        outcomes = await asyncio.gather(
            *(self.read(s, read_for(s), budget_s, gate) for s in sources)
        )
        results: dict[str, T] = {}
        served: dict[str, Served[T]] = {}
        errors: list[SourceError] = []
        for source, outcome in zip(sources, outcomes, strict=True):
            if isinstance(outcome, SourceError):
                errors.append(outcome)
            else:
                results[source.id] = outcome.value
                served[source.id] = outcome
        return FanOutResult(results, errors, served)

    async def read(
        self, source: Source, read: Read[T], budget_s: float | None = None, gate: Gate | None = None
    ) -> Served[T] | SourceError:
        """One read of one source: cache, then breaker, timeout, bulkhead and retries;
        with a ``gate``, a background call (see the module docstring). Traced (a span
        per read) when the edge gave the pool a ``tracer``."""
        tracer = self.tracer
        if tracer is None:
            return await self._read(source, read, budget_s, gate)
        with tracer.source_call(source.id, source.config.protocol.value, read.kind) as span:
            stats = CallStats()
            token = CALL_STATS.set(stats)
            try:
                outcome = await self._read(source, read, budget_s, gate)
            finally:
                CALL_STATS.reset(token)
            span.finish(_served_how(source, outcome, gate is not None), outcome, stats)
            return outcome

    async def _read(
        self, source: Source, read: Read[T], budget_s: float | None, gate: Gate | None
    ) -> Served[T] | SourceError:
        if gate is not None:
            await gate(source)
            outcome = await self._call_one(source, read.run, budget_s, background=True)
            return outcome if isinstance(outcome, SourceError) else Served(outcome)

        def call(budget: float | None) -> Awaitable[T | SourceError]:
            return self._call_one(source, read.run, budget)

        return await self.cache.read(source, read, call, budget_s)

    async def call(self, source: Source, call: Callable[[Source], Awaitable[T]]) -> T | SourceError:
        """``call(source)`` now, never from the cache: breaker, timeout, bulkhead, retries."""
        tracer = self.tracer
        if tracer is None:
            return await self._call_one(source, call, None)
        with tracer.source_call(source.id, source.config.protocol.value, "call") as span:
            stats = CallStats()
            token = CALL_STATS.set(stats)
            try:
                outcome = await self._call_one(source, call, None)
            finally:
                CALL_STATS.reset(token)
            span.finish(CACHE_BYPASS, outcome, stats)
            return outcome

    async def _call_one(
        self,
        source: Source,
        call: Callable[[Source], Awaitable[T]],
        budget_s: float | None,
        *,
        background: bool = False,
    ) -> T | SourceError:
        started = time.perf_counter()
        timeout_s = source.config.timeout_s
        if budget_s is not None and budget_s < timeout_s:
            if budget_s <= 0:
                return SourceTimeout(source.id, "the request's fan-out deadline had passed")
            timeout_s = budget_s
        bulkhead = self._bulkheads.get(source.id) or Bulkhead(source.config.max_concurrency)
        if background:
            async with bulkhead.background() as admitted:
                if not admitted:
                    return SourceBusy(source.id, "every slot of its bulkhead is in use")
                retries = CALL_RETRIES.set(False)
                try:
                    return await self._call_guarded(source, call, timeout_s, started, None)
                finally:
                    CALL_RETRIES.reset(retries)
        return await self._call_guarded(source, call, timeout_s, started, bulkhead)

    async def _call_guarded(
        self,
        source: Source,
        call: Callable[[Source], Awaitable[T]],
        timeout_s: float,
        started: float,
        bulkhead: Bulkhead | None,
    ) -> T | SourceError:
        """The call within the breaker and the timeout, in a bulkhead slot (waited for,
        unless already held: ``bulkhead`` None); its outcome recorded in the health."""
        health = self.health(source.id)
        # Its requests' retries and last status (sources.transport.retry): the span's
        # when the read is traced, else this call's own.
        stats = CALL_STATS.get()
        token = None
        if stats is None:
            stats = CallStats()
            token = CALL_STATS.set(stats)
        retried = stats.retries
        try:
            return await self._breaker_call(source, call, timeout_s, started, bulkhead, health)
        finally:
            health.retries += stats.retries - retried
            if token is not None:
                CALL_STATS.reset(token)
            # Its outcome is in the health, and the adapter may have learnt from it.
            self._views.changed()

    async def _breaker_call(
        self,
        source: Source,
        call: Callable[[Source], Awaitable[T]],
        timeout_s: float,
        started: float,
        bulkhead: Bulkhead | None,
        health: SourceHealth,
    ) -> T | SourceError:
        breaker = await self.breakers.breaker(source.id)
        try:
            # Waiting for a free slot in the bulkhead counts against the timeout.
            async with (
                breaker,
                asyncio.timeout(timeout_s),
                bulkhead.request() if bulkhead is not None else _held(),
            ):
                # The adapter's requests retry on their own, up to this instant.
                token = CALL_DEADLINE.set(time.monotonic() + timeout_s)
                try:
                    result = await call(source)
                finally:
                    CALL_DEADLINE.reset(token)
        except CircuitOpen:
            health.breaker_refusals += 1
            wait = self.breakers.reopens_in(source.id)
            return SourceUnavailable(
                source.id,
                f"not called: it failed repeatedly (circuit open, next try in {wait:.0f} s)",
                retryable=False,
            )
        except SourceError as exc:
            outcome: T | SourceError = exc
        except TimeoutError:
            outcome = SourceTimeout(source.id, f"no answer within {timeout_s:.3g} s")
        except Exception as exc:  # an adapter bug must not break the answer
            source.logger.exception("adapter raised an unexpected %s", type(exc).__name__)
            # Our bug, not the upstream's failure: its health is left as it was.
            return SourceBadResponse(source.id, "the adapter could not read the answer")
        else:
            outcome = result
        elapsed_ms = (time.perf_counter() - started) * 1000
        if isinstance(outcome, SourceRefusedRequest):
            # It answered, and said this request is not supported: a fact about the
            # server (a problem to fix), not a failure of it.
            health.record(True, elapsed_ms)
            # Logged once per problem window, without the diagnostics: servers echo
            # the value refused (a client's `near`, a location). Those go to the
            # source's problems, which only operators read.
            if health.refused(outcome):
                source.logger.warning(
                    "%s (%.0f ms); its diagnostics are in the source's REQUEST_REFUSED "
                    "problem, and further refusals are not logged for %.0f min",
                    outcome,
                    elapsed_ms,
                    health.problems.ttl_s / 60,
                )
            return outcome
        failure = type(outcome) if isinstance(outcome, SourceError) else None
        ok = failure is None
        health.record(ok, elapsed_ms, failure)
        if not ok:
            source.logger.warning("%s (%.0f ms)", outcome, elapsed_ms)
        return outcome


def _served_how(source: Source, outcome: object, background: bool) -> str:
    """How the cache served a read (``sources.pool.tracing``): fresh, stale, miss, or
    none (the source is not cached), bypass (a background call)."""
    if background:
        return CACHE_BYPASS
    policy = CachePolicy.of(source)
    if policy.ttl_s <= 0:
        return CACHE_NONE
    if isinstance(outcome, Served) and outcome.from_cache:
        return "fresh" if outcome.age_s < policy.ttl_s else "stale"
    return "miss"


@contextlib.asynccontextmanager
async def _held() -> AsyncIterator[None]:
    """A bulkhead slot already taken."""
    yield
