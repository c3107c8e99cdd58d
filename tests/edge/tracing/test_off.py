"""Tracing is off unless the ``OTEL_*`` variables turn it on: then nothing is exported,
and neither the tracing SDK, nor the exporter, nor the gateway's spans are imported
(checked in a gateway subprocess).

redis-py 8 imports OpenTelemetry's *metrics* SDK (and the trace API) by itself when
it is installed, for its own observability, idle unless an app initialises it: those
modules are not ours to keep out, so the check names what tracing would load.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.edge.tracing.receiver import otlp_receiver

ROOT = Path(__file__).resolve().parents[3]
# A gateway served by uvicorn on loopback, one query through every layer, then what
# of OpenTelemetry the process imported.
SCRIPT = """
import asyncio, json, sys
import aiohttp, uvicorn
from app import create_app
from edge.settings import Settings

async def main():
    app = create_app(Settings(database_url=sys.argv[1]))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    query = "{ slots(filter: {near: {latitude: 45.5, longitude: -73.5}}) "
    query += "{ edges { node { id } } } }"
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{port}/graphql"
        async with session.post(url, json={"query": query}) as response:
            status = response.status
    server.should_exit = True
    await task
    tops = ("opentelemetry", "edge", "schema")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in tops)
    print(json.dumps({"status": status, "modules": loaded}))

asyncio.run(main())
"""


# What tracing loads, and only tracing: the SDK's tracer, the exporter, our spans.
TRACING_MODULES = (
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter",
    "opentelemetry.trace.propagation.tracecontext",
    "edge.tracing.provider",
    "edge.tracing.spans",
    "edge.tracing.asgi",
    "schema.phase_spans",
)


def tracing_loaded(modules: list[str]) -> list[str]:
    return [m for m in modules if m.startswith(TRACING_MODULES)]


async def run_gateway(tmp_path: Path, **variables: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(variables)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        f"sqlite:///{tmp_path / 'registry.sqlite3'}",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    "variables",
    [
        {},
        # Named, sampled and flushed, but no exporter: still off.
        {"OTEL_SERVICE_NAME": "passerelle-test", "OTEL_BSP_SCHEDULE_DELAY": "10"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "<receiver>"},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "<receiver>"},
    ],
    ids=["no-variables", "no-exporter", "sdk-disabled", "exporter-none"],
)
async def test_without_an_exporter_nothing_is_exported_nor_imported(
    tmp_path: Path, variables: dict[str, str]
) -> None:
    async with otlp_receiver() as received:
        given = {k: v.replace("<receiver>", received.url) for k, v in variables.items()}
        result = await run_gateway(tmp_path, **given)
    assert result["status"] == 200
    assert tracing_loaded(result["modules"]) == []
    assert "edge.tracing.config" in result["modules"]  # it did look at the variables
    assert received.bodies == []


async def test_the_same_gateway_with_an_endpoint_exports(tmp_path: Path) -> None:
    """The check above can fail: with an endpoint, the same script exports its request."""
    async with otlp_receiver() as received:
        result = await run_gateway(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=received.url)
    assert result["status"] == 200
    assert set(tracing_loaded(result["modules"])) >= {
        "opentelemetry.sdk.trace",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "edge.tracing.spans",
        "schema.phase_spans",
    }
    assert [s.name for s in received.spans() if s.name.startswith("POST")] == ["POST /graphql"]
