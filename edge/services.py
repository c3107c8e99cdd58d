"""What the HTTP edge works with, handed in as one typed value: :class:`EdgeServices`.

``app.py`` builds it when the app starts (in its lifespan) and puts it once on
``app.state``; the middleware and the view read it with :func:`services_of`, the
one place that knows where it is kept (or from the request's
:class:`~edge.exchange.Exchange`)::

    services = services_of(request.app)
    refusal = await services.rate_guard.check(request)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.documents.apq import PersistedQueries
    from edge.documents.partners import Partners
    from edge.metrics import GatewayMetrics
    from edge.middleware.rate_limit import RateGuard
    from edge.middleware.response_cache import ResponseCache
    from edge.settings import Settings
    from edge.subscriptions.hub import Subscriptions
    from resolvers.webhooks import WebhookAccess
    from sources.coverage import RegionCoverage
    from sources.pool.fanout import SourcePool
    from sources.watch import SlotWatch

__all__ = ["EdgeServices", "services_of"]


@dataclass(frozen=True, slots=True)
class EdgeServices:
    """The gateway's parts that serve a request; ``response_cache`` is None when off,
    ``subscriptions`` the open subscriptions and their caps, ``max_batch`` the most
    operations one request may carry (None: batching is off)."""

    settings: Settings
    pool: SourcePool
    partners: Partners
    persisted: PersistedQueries
    rate_guard: RateGuard
    response_cache: ResponseCache | None
    subscriptions: Subscriptions
    max_batch: int | None = None
    # The watch of the sources behind subscriptions (slot alerts).
    watch: SlotWatch | None = None
    # Partners' webhook alerts (edge/webhooks/); None: not on this gateway.
    webhooks: WebhookAccess | None = None
    # What /metrics shows (edge/metrics/); None: not counted.
    metrics: GatewayMetrics | None = None
    # The coverage by region /status shows (sources/coverage/), counted in the background.
    coverage: RegionCoverage | None = None


def services_of(app: Any) -> EdgeServices:
    """The services of a started app, the Starlette app or what ``app.create_app``
    returns (``LookupError`` before its lifespan has run)."""
    services = getattr(app.state, "services", None)
    if not isinstance(services, EdgeServices):
        raise LookupError("the app has not started: its lifespan builds its services")
    return services
