"""``--metrics-port``: the metrics on a listener of their own, open, and only there; a
port that cannot be used is one line at start-up."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GatewayFactory, fhir_definition
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[3]
QUERY = "{ slots(first: 2) { edges { node { id } } } }"


async def test_the_metrics_are_served_on_their_port_only_and_it_closes_with_the_app(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    port = free_port()
    scrape_url = f"http://127.0.0.1:{port}/metrics"
    # Production: the public port would want an operator key; the private one does not.
    async with gateway_for(fhir_definition(fhir_server), metrics_port=port, env="production") as gw:
        async with gw.session.post(gw.url, json={"query": QUERY}) as response:
            assert response.status == 200
        async with gw.session.get(gw.url.replace("/graphql", "/metrics")) as response:
            assert response.status == 404
            assert "--metrics-port" in await response.text()
        async with gw.session.get(scrape_url) as response:
            assert response.status == 200
            assert response.headers["content-type"].startswith("text/plain")
            text = await response.text()
        families = {family.name: family for family in text_string_to_metric_families(text)}
        requests = families["passerelle_requests"]
        assert sum(s.value for s in requests.samples if s.name.endswith("_total")) >= 1
        assert "passerelle_source_calls" in families
        async with gw.session.get(f"http://127.0.0.1:{port}/graphql") as response:
            assert response.status == 404  # the listener serves the metrics, nothing else
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(scrape_url) as response:
                await response.read()


def _app(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "app.py", "--no-demo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_public_port_as_metrics_port_is_one_line() -> None:
    port = str(free_port())
    done = _app("--port", port, "--metrics-port", port)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"passerelle: --metrics-port {port} is --port's: give it a port of its own"
    ]


def test_a_metrics_port_in_use_is_one_line() -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = _app("--port", str(free_port()), "--metrics-port", str(port))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"passerelle: --metrics-port {port} on 127.0.0.1: ")
    assert "in use" in line
