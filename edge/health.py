"""Liveness and readiness, for load balancers and process managers.

- ``GET /health`` (and ``/healthz``, its old name): 200 while the process answers.
- ``GET /ready``: 200 when this instance should get traffic, else 503, with what is
  wrong. Ready means: the app has started (its lifespan read the registry and gave
  bulk feeds their first load, or its time); the registry database answers; Redis
  answers when it is configured; and the instance is not shutting down. Each check
  has ``CHECK_TIMEOUT_S``; the body says which failed, never a URL or a password::

      {"ready": false, "checks": {"registry": "ok", "redis": "unreachable",
                                  "shutdown": "ok"}}

On SIGTERM the gateway's server (``edge/cli/serve.py``) first marks the instance
draining: ``/ready`` answers 503 at once while the listener stays open for
``Settings.drain_s``, so that a load balancer that asks ``/ready`` stops sending
traffic before the listener closes. Then the listener closes (a proxy's next
connection is refused, and it tries another instance), and the instance is
*stopping*: every HTTP answer says ``Connection: close``
(:class:`CloseWhenStopping`), so that a proxy keeping connections open to it
(nginx's upstream ``keepalive``, which never asks ``/ready``) lets go of each after
its next answer, and of idle ones at its own keep-alive timeout, rather than send a
request on one at the moment the server closes it, which it could not retry for a
POST (``examples/deploy/README.md``). Subscriptions are told the server goes away,
in-flight requests finish (bounded by uvicorn's graceful timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from starlette.datastructures import State
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CHECK_TIMEOUT_S",
    "CloseWhenStopping",
    "Readiness",
    "draining",
    "health",
    "ready",
    "stopping",
]

CHECK_TIMEOUT_S = 2.0
_HEADERS = {"Cache-Control": "no-store"}

Check = Callable[[], Awaitable[object]]


@dataclass(slots=True)
class Readiness:
    """What ``/ready`` asks: named checks (each raising, or timing out, when the part
    it checks is not there), and whether the instance is draining."""

    checks: dict[str, Check] = field(default_factory=dict)
    draining: bool = False
    # The listener closed: every HTTP answer closes its connection (CloseWhenStopping).
    stopping: bool = False

    async def report(self) -> dict[str, str]:
        names = list(self.checks)
        outcomes = await asyncio.gather(*(self._run(self.checks[n]) for n in names))
        report = dict(zip(names, outcomes, strict=True))
        report["shutdown"] = "draining" if self.draining else "ok"
        return report

    @staticmethod
    async def _run(check: Check) -> str:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await check()
        except TimeoutError:
            return "timeout"
        except Exception:  # any failure of the part: unreachable, whatever its kind
            return "unreachable"
        return "ok"


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers=_HEADERS)


async def ready(request: Request) -> Response:
    readiness = getattr(request.app.state, "readiness", None)
    if not isinstance(readiness, Readiness):  # the lifespan has not built it: starting
        return JSONResponse({"ready": False, "checks": {"started": "no"}}, 503, _HEADERS)
    report = await readiness.report()
    ok = all(outcome == "ok" for outcome in report.values())
    return JSONResponse({"ready": ok, "checks": report}, 200 if ok else 503, _HEADERS)


async def draining(app: object, drain_s: float) -> None:
    """Mark a started ``app`` (``app.create_app``'s) not ready, then wait ``drain_s``
    with the listener still open; nothing when it never started."""
    state = getattr(app, "state", None)
    readiness = getattr(state, "readiness", None)
    if not isinstance(readiness, Readiness):
        return
    readiness.draining = True
    if drain_s > 0:
        await asyncio.sleep(drain_s)


def stopping(app: object) -> None:
    """Mark a started ``app`` stopping (its listener closed): from now on each HTTP
    answer closes its connection; nothing when it never started."""
    readiness = getattr(getattr(app, "state", None), "readiness", None)
    if isinstance(readiness, Readiness):
        readiness.stopping = True


class CloseWhenStopping:
    """ASGI middleware, outermost: once the app (``app.state.readiness``) is stopping,
    each HTTP answer carries ``Connection: close``, and uvicorn closes the connection
    after it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @property
    def state(self) -> State:
        """The app's state, where its lifespan keeps its services (``services_of``)."""
        state: State = getattr(self.app, "state")  # noqa: B009 (ASGIApp has no state)
        return state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        readiness = getattr(self.state, "readiness", None)
        if scope["type"] != "http" or not (isinstance(readiness, Readiness) and readiness.stopping):
            await self.app(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)
