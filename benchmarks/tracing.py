"""The CPU that OpenTelemetry traces add per executed query (``edge/tracing/``), in µs.

    python benchmarks/tracing.py            # about a minute
    python benchmarks/tracing.py --quick    # a few seconds, rougher

The gateway (``app.create_app``, served by uvicorn), the demo FHIR and REST systems
and the client run in this process; an OTLP/HTTP receiver that answers every export
runs in another, so that receiving costs this process nothing. The same near-me query
(a new radius each time, so that no answer is reused whole) is sent ``N`` times,
sequentially, with tracing off (no ``OTEL_*`` variable) and on
(``OTEL_EXPORTER_OTLP_ENDPOINT`` set, every trace sampled, batched and exported by
the SDK's thread, whose CPU counts too): the difference of CPU per query is what
tracing adds. Twice: with the source cache on (the sources' answers fresh in the
cache: the request, its 3 phases and 2 source spans), and off (each query calls both
sources: their HTTP requests get spans of their own, and carry ``traceparent``).
Off and on alternate, ``ROUNDS`` times; the median difference is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator

import aiohttp
import uvicorn
from aiohttp import web

from app import create_app
from edge.settings import Settings
from examples import demo_fhir, demo_rest
from examples.world import World
from sources.base import SourceConfig
from sources.records import SourceProtocol
from sources.registry.store import SourceStore
from sources.rest_json.options import RestJsonOptions

KEY = "benchmark-key-not-a-secret"
QUERY = """query NearMe($near: GeoPointInput, $radius: Float!) {
  slots(filter: {near: $near, radiusKm: $radius}, first: 10) {
    edges { node { id start clinic { id name } } }
  }
}"""
RECEIVER = """
import sys
from aiohttp import web
async def traces(request):
    await request.read()
    return web.Response(body=b"", content_type="application/x-protobuf")
app = web.Application()
app.router.add_post("/v1/traces", traces)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


@contextlib.asynccontextmanager
async def upstream(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def gateway(settings: Settings) -> AsyncIterator[str]:
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await task


async def cpu_per_query_us(settings: Settings, n: int) -> float:
    async with gateway(settings) as url, aiohttp.ClientSession() as session:

        async def ask(radius: float) -> None:
            variables = {"near": {"latitude": 45.5017, "longitude": -73.5673}, "radius": radius}
            async with session.post(url, json={"query": QUERY, "variables": variables}) as r:
                body = await r.json()
                assert r.status == 200 and "errors" not in body, body

        for i in range(20):  # warm: parser and validation caches, connections, source cache
            await ask(20 + i % 4)
        started = time.process_time()
        for i in range(n):
            await ask(20 + i % 4)
        return (time.process_time() - started) / n * 1e6


async def main(quick: bool) -> None:
    n, rounds = (100, 2) if quick else (400, 5)
    world = World(0.05)
    os.environ["PASSERELLE_BENCH_REST_KEY"] = KEY
    receiver_port = 4318 + 1000 + os.getpid() % 1000
    receiver = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RECEIVER, str(receiver_port)
    )
    try:
        await asyncio.sleep(1.0)
        async with (
            upstream(demo_fhir.build_app(world)) as fhir,
            upstream(demo_rest.build_app(world, api_key=KEY, rate_limit_rps=None)) as rest,
        ):
            with tempfile.TemporaryDirectory() as tmp:
                database = f"sqlite:///{tmp}/registry.sqlite3"
                with SourceStore(database) as store:
                    store.add(
                        SourceConfig(
                            id="fhir",
                            name="FHIR",
                            protocol=SourceProtocol.FHIR_R4,
                            url=f"{fhir}/fhir",
                        )
                    )
                    store.add(
                        SourceConfig(
                            id="rest",
                            name="REST",
                            protocol=SourceProtocol.REST_JSON,
                            url=f"{rest}/api/v1",
                            credentials_env="PASSERELLE_BENCH_REST_KEY",
                            options=RestJsonOptions(slot_path="disponibilites/{id}"),
                        )
                    )
                for cache in ("memory", "off"):
                    settings = Settings(database_url=database, cache=cache, response_cache=False)
                    added = []
                    for _ in range(rounds):
                        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
                        off = await cpu_per_query_us(settings, n)
                        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = (
                            f"http://127.0.0.1:{receiver_port}"
                        )
                        on = await cpu_per_query_us(settings, n)
                        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
                        added.append(on - off)
                        print(f"  cache {cache}: off {off:.0f} µs, on {on:.0f} µs", file=sys.stderr)
                    print(
                        f"source cache {cache}: tracing adds {statistics.median(added):.0f} µs of "
                        f"CPU per executed query (median of {rounds}; off: {off:.0f} µs per query "
                        "for client, gateway and upstreams together)"
                    )
    finally:
        receiver.terminate()
        await receiver.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
