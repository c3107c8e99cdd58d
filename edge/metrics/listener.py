"""``MetricsListener``: ``/metrics`` on a port of its own (``--metrics-port``).

An operator who keeps the scrape on a private interface (``--metrics-host``, 127.0.0.1
by default) chooses the network rather than a key: the listener answers the text
format to anyone who reaches it, and the public port's ``/metrics`` answers 404. It
runs on the gateway's own event loop (aiohttp's server, a dependency already), so the
collectors read the pool's counts on the thread that moves them; prometheus-client's
own threaded server would read them mid-update.

    listener = await MetricsListener.start(metrics, "127.0.0.1", 9464)
    ...
    await listener.aclose()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from edge.metrics.registry import GatewayMetrics

__all__ = ["MetricsListener"]


class MetricsListener:
    """``GET /metrics`` (and nothing else) on ``host:port``, until :meth:`aclose`."""

    def __init__(self, runner: web.AppRunner) -> None:
        self._runner = runner

    @classmethod
    async def start(cls, metrics: GatewayMetrics, host: str, port: int) -> MetricsListener:
        async def scrape(_request: web.Request) -> web.Response:
            return web.Response(
                body=metrics.exposition(),
                headers={"content-type": CONTENT_TYPE_LATEST, "cache-control": "no-store"},
            )

        app = web.Application()
        app.router.add_get("/metrics", scrape)
        # No access log: Prometheus scrapes every few seconds, and says nothing worth keeping.
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, reuse_address=True).start()
        except OSError:
            await runner.cleanup()
            raise
        return cls(runner)

    async def aclose(self) -> None:
        await self._runner.cleanup()
