"""Slot alerts heard by real clients, unchanged: Apollo Client over WebSocket
(``GraphQLWsLink``) and over multipart HTTP (``HttpLink``), and the ``graphql-ws`` client
(``tests/edge/apollo``, Node; one process per scenario, its clients side by side), from
a bulk feed republished with three new free slots and from the churning demo systems;
and no trace of the subscriber's whereabouts in the run's logs, uvicorn's access log
included."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edge.services import services_of
from examples import demo_fhir, demo_rest
from examples.churn import Churn
from examples.world import World
from sources.fhir.options import FhirOptions
from sources.rest_json.options import RestJsonOptions
from tests.conftest import (
    REST_KEY,
    Gateway,
    GatewayFactory,
    fhir_definition,
    pinned_clock,
    rest_definition,
    serve,
)
from tests.edge.subscriptions.feeds import FILTER, fast_feeds, nearby_feed
from tests.edge.subscriptions.wire import LATITUDE, LONGITUDE, MULTIPART, NEAR_ME
from tests.node_tools import npm_installed

APOLLO = Path(__file__).parents[1] / "apollo"
CLIENTS = ("apollo-ws", "apollo-multipart", "graphql-ws")
HEARD = (
    "subscription Alerts($filter: SlotFilter!) "
    "{ slotAlerts(filter: $filter) { opened { start clinic { name } } goneIds seenAt } }"
)


@pytest.fixture(scope="session")
def clients_script() -> Path:
    return npm_installed(APOLLO, "graphql-ws") / "subscriptions_check.mjs"


class Clients:
    """The Node clients' process, and the lines each client printed so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(json.loads(line))

    async def finished(self) -> None:
        await self._reader
        await self.process.wait()

    def of(self, client: str, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["client"] == client and line["event"] == event]

    async def until(self, done: Any, timeout_s: float = 20.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not done():
                assert not self._reader.done(), f"the clients stopped: {self.lines}"
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def node_clients(script: Path, spec: dict[str, Any]) -> AsyncIterator[Clients]:
    node = shutil.which("node")
    assert node, "Node.js is required (Debian package nodejs)"
    process = await asyncio.create_subprocess_exec(
        node, str(script), json.dumps(spec),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    clients = Clients(process)
    try:
        yield clients
    finally:
        assert process.stdin is not None and process.stderr is not None
        process.stdin.close()  # the clients dispose of themselves and exit
        await asyncio.wait_for(clients.finished(), 10)
        err = await process.stderr.read()
        assert process.returncode == 0, err.decode()


def watched_by_uvicorn(caplog: pytest.LogCaptureFixture) -> list[logging.Logger]:
    """uvicorn's loggers (which do not reach the root) at DEBUG, into caplog."""
    loggers = [logging.getLogger("uvicorn"), logging.getLogger("uvicorn.access")]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(caplog.handler)
    return loggers


async def test_apollo_and_graphql_ws_hear_the_three_slots_a_feed_republishes_and_logs_keep_no_whereabouts(  # noqa: E501
    gateway_for: GatewayFactory,
    world: World,
    tmp_path: Path,
    clients_script: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast_feeds(monkeypatch)
    caplog.set_level(logging.DEBUG)
    async with nearby_feed(world, tmp_path / "feed") as (publisher, source):
        async with gateway_for(source, ws_keepalive_s=0.5) as gw:
            uvicorn_loggers = watched_by_uvicorn(caplog)
            spec = {"url": gw.url, "query": HEARD, "variables": {"filter": FILTER},
                    "clients": CLIENTS}  # fmt: skip
            async with node_clients(clients_script, spec) as clients:
                hub = services_of(gw.app).subscriptions
                await clients.until(lambda: hub.limits.open_count() == len(CLIENTS))
                await asyncio.sleep(0.5)  # each subscription's first read of the feed
                added = publisher.add(3)
                expected = sorted(
                    (s.start.isoformat(), world.clinics_by_id[s.clinic_id].name) for s in added
                )

                def heard(client: str) -> list[tuple[str, str]]:
                    return sorted(
                        (slot["start"], slot["clinic"]["name"])
                        for line in clients.of(client, "next")
                        for slot in line["data"]["slotAlerts"]["opened"]
                    )

                await clients.until(lambda: all(len(heard(c)) >= 3 for c in CLIENTS))
                await privacy_probes(gw)
            assert {c: heard(c) for c in CLIENTS} == {c: expected for c in CLIENTS}
            for client in CLIENTS:
                for line in clients.of(client, "next"):
                    assert line["data"]["slotAlerts"]["goneIds"] == []
                assert clients.of(client, "error") == []
            # The graphql-ws client saw the server's keep-alive pings.
            assert clients.of("graphql-ws", "ping")
    for logger in uvicorn_loggers:
        logger.removeHandler(caplog.handler)
    logged = caplog.text
    for digits in (f"{LATITUDE}", f"{LONGITUDE}".lstrip("-"), "45.5087", "73.5541"):
        assert digits not in logged
    assert "/graphql?…" in logged  # the access log was captured, its query strings cut


async def privacy_probes(gateway: Gateway) -> None:
    """Requests whose URLs carry the subscriber's whereabouts: none may be logged."""
    variables = json.dumps({"filter": NEAR_ME["filter"]})
    for accept in ("application/json", MULTIPART):
        params = {"query": HEARD, "variables": variables}
        async with gateway.session.get(gateway.url, params=params, headers={"Accept": accept}):
            pass
    near = json.dumps({"near": NEAR_ME["filter"]["near"]})
    query = "query Q($near: GeoPointInput) { slots(filter: {near: $near}) { totalCount } }"
    async with gateway.session.get(gateway.url, params={"query": query, "variables": near}) as r:
        assert r.status == 200


async def test_apollo_hears_the_demo_churn_over_websocket_and_multipart_http(
    gateway_for: GatewayFactory, world: World, clients_script: Path
) -> None:
    fast = {"clock": pinned_clock, "seed": world.seed}
    fhir_app = demo_fhir.build_app(world, churn=Churn(1200, system="fhir", **fast))  # type: ignore[arg-type]
    rest_app = demo_rest.build_app(
        world,
        api_key=REST_KEY,
        churn=Churn(1200, system="rest", **fast),  # type: ignore[arg-type]
    )
    paced = {"watch_calls_per_minute": 600}
    async with serve(fhir_app) as fhir, serve(rest_app) as rest:
        definitions = (
            replace(fhir_definition(fhir), options=FhirOptions(**paced)),
            replace(rest_definition(rest), options=RestJsonOptions(**paced)),
        )
        async with gateway_for(*definitions) as gw:
            query = "subscription { slotAlerts(filter: {}) { opened { source { id } } goneIds } }"
            spec = {"url": gw.url, "query": query, "clients": ["apollo-ws", "apollo-multipart"]}
            async with node_clients(clients_script, spec) as clients:

                def changes(client: str) -> tuple[set[str], int]:
                    alerts = [line["data"]["slotAlerts"] for line in clients.of(client, "next")]
                    opened = {s["source"]["id"] for a in alerts for s in a["opened"]}
                    return opened, sum(len(a["goneIds"]) for a in alerts)

                both = {"demo-fhir", "demo-rest"}
                await clients.until(
                    lambda: all(
                        changes(c)[0] == both and changes(c)[1] > 0
                        for c in ("apollo-ws", "apollo-multipart")
                    )
                )
            assert clients.of("apollo-ws", "error") == clients.of("apollo-multipart", "error") == []
