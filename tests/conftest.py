"""Shared fixtures: the demo world, its booking servers on loopback, a live gateway."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import text

from app import create_app
from edge.cli.serve import gateway_server, uvicorn_config
from edge.settings import Settings
from examples import demo_fhir, demo_rest
from examples.world import World
from sources.base import SourceConfig
from sources.records import SourceProtocol
from sources.registry.store import SourceStore
from sources.rest_json.options import RestJsonOptions
from sources.timeutil import MONTREAL

TEST_SCALE = 0.02
# The test world's first day and the gateway's "now" are pinned (a Monday outside any
# daylight-saving change), so the suite searches the same province on any date.
TEST_FIRST_DAY = date(2026, 11, 16)
TEST_NOW = datetime.combine(TEST_FIRST_DAY, time(7, 30), MONTREAL)
REST_KEY = "test-key-not-a-secret"
REST_KEY_ENV = "PASSERELLE_TEST_REST_KEY"
POSTGRES_URL = os.environ.get(
    "PASSERELLE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def world() -> World:
    return World(TEST_SCALE, first_day=TEST_FIRST_DAY)


def pinned_clock() -> datetime:
    """The gateway's clock in tests: always :data:`TEST_NOW`."""
    return TEST_NOW


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[TestServer]:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def fhir_server(world: World) -> AsyncIterator[TestServer]:
    async with serve(demo_fhir.build_app(world)) as server:
        yield server


@pytest.fixture
async def rest_server(world: World) -> AsyncIterator[TestServer]:
    async with serve(demo_rest.build_app(world, api_key=REST_KEY)) as server:
        yield server


def fhir_definition(server: TestServer, source_id: str = "demo-fhir") -> SourceConfig:
    return SourceConfig(
        id=source_id,
        name="Demo FHIR",
        protocol=SourceProtocol.FHIR_R4,
        url=str(server.make_url("/fhir")),
    )


def rest_definition(server: TestServer, source_id: str = "demo-rest") -> SourceConfig:
    return SourceConfig(
        id=source_id,
        name="Demo REST",
        protocol=SourceProtocol.REST_JSON,
        url=str(server.make_url("/api/v1")),
        credentials_env=REST_KEY_ENV,
        options=RestJsonOptions(slot_path="disponibilites/{id}", slot_languages_param="langues"),
    )


@pytest.fixture
def registry_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(REST_KEY_ENV, REST_KEY)
    return f"sqlite:///{tmp_path / 'registry.sqlite3'}"


@dataclass
class Gateway:
    """A gateway served by uvicorn on a loopback port, and a client for it; ``app`` is
    what ``create_app`` built (``edge.services.services_of(app)``: its parts)."""

    url: str
    session: aiohttp.ClientSession
    store: SourceStore
    app: Any = None

    async def query(
        self, query: str, variables: dict[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        body = {"query": query, "variables": variables or {}, **extra}
        async with self.session.post(self.url, json=body) as response:
            assert response.status == 200, await response.text()
            result: dict[str, Any] = await response.json()
            return result


@contextlib.asynccontextmanager
async def run_gateway(settings: Settings) -> AsyncIterator[str]:
    async with serving(settings) as (url, _app):
        yield url


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[str, Any]]:
    """The gateway's URL, and its app, while uvicorn serves it on a loopback port."""
    config = uvicorn_config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    # The gateway's own server: it says goodbye to open subscriptions when it stops.
    server = gateway_server(config, settings)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/graphql", config.app
    finally:
        server.should_exit = True
        await task


GatewayFactory = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


@pytest.fixture
def gateway_for(registry_url: str) -> GatewayFactory:
    """``async with gateway_for(definition, ...) as gw``: a live gateway over those sources."""

    @contextlib.asynccontextmanager
    async def make(*definitions: SourceConfig, **settings: Any) -> AsyncIterator[Gateway]:
        store = SourceStore(registry_url)
        for definition in definitions:
            store.add(definition)
        settings.setdefault("registry_poll_s", 0.1)
        settings.setdefault("clock", pinned_clock)
        async with (
            serving(Settings(database_url=registry_url, **settings)) as (url, app),
            aiohttp.ClientSession() as session,
        ):
            yield Gateway(url, session, store, app)
        store.close()

    return make


@pytest.fixture
async def gateway(
    gateway_for: GatewayFactory, fhir_server: TestServer, rest_server: TestServer
) -> AsyncIterator[Gateway]:
    async with gateway_for(fhir_definition(fhir_server), rest_definition(rest_server)) as gw:
        yield gw


# -- registry databases: SQLite and the real PostgreSQL --------------------------------


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sqlalchemy.Engine]:
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except sqlalchemy.exc.OperationalError as exc:
        engine.dispose()
        pytest.fail(
            f"PostgreSQL at {POSTGRES_URL} is unreachable; the registry must be tested "
            f"against it (set PASSERELLE_TEST_POSTGRES_URL to another server): {exc}"
        )
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A registry database on SQLite, then on the real PostgreSQL (a schema of its own)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.sqlite3'}"
        return
    admin: sqlalchemy.Engine = request.getfixturevalue("postgres_admin")
    schema = f"test_registry_{uuid.uuid4().hex[:16]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = sqlalchemy.make_url(POSTGRES_URL).update_query_dict(
            {"options": f"-csearch_path={schema}"}
        )
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
