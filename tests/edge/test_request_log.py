"""Request logs: one JSON line per request in production, its id on every answer, and
nothing of where anyone is, or of their key, in any log."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from edge.documents.trusted import parse_manifest
from edge.middleware.request_log import LOGGER, RequestLog, request_id
from edge.settings import Settings
from sources.registry.partners import PartnerStore
from tests.conftest import GatewayFactory, fhir_definition, rest_definition

LATITUDE, LONGITUDE = "45.51234567", "-73.56781234"
NEAR = {"latitude": float(LATITUDE), "longitude": float(LONGITUDE)}
FREE = """query Free($near: GeoPointInput) {
  slots(filter: {near: $near, radiusKm: 30}, first: 3) { edges { node { id start } } }
}"""
NEAR_ME = """query NearMe($near: GeoPointInput) {
  slots(filter: {near: $near, radiusKm: 30}, first: 2) { edges { node { id } } }
}"""
FIELDS = {
    "request_id",
    "time",
    "method",
    "route",
    "operation",
    "operation_type",
    "duration_ms",
    "status",
    "error_codes",
    "cache",
    "sources",
}


def sha256(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


class Lines(logging.Handler):
    """Every record of the loggers it is put on, as written."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def request_lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def test_each_request_logs_one_json_line_with_its_id_and_no_whereabouts_or_key(
    gateway_for: GatewayFactory,
    fhir_server: TestServer,
    rest_server: TestServer,
    registry_url: str,
    request_lines: Lines,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with PartnerStore(registry_url) as partners:
        # One request per 100 s (a burst of one): its second request gets a 429.
        _, key = partners.create_client("rdv-app", rate_limit_rps=0.01)
        manifest = {
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [
                {"id": sha256(NEAR_ME), "name": "NearMe", "type": "query", "body": NEAR_ME}
            ],
        }
        partners.push_documents("rdv-app", parse_manifest(json.dumps(manifest)))
    variables = json.dumps({"near": NEAR})
    apq = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": sha256(FREE)}})
    answers: list[tuple[int, str, str]] = []  # status, X-Request-Id, what was sent as one
    caplog.set_level(logging.DEBUG)
    async with gateway_for(
        fhir_definition(fhir_server),
        rest_definition(rest_server),
        env="production",
        trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
    ) as gw:

        async def call(method: str, sent_id: str = "", url: str = gw.url, **options: Any) -> Any:
            headers = options.pop("headers", {})
            if sent_id:
                headers["X-Request-Id"] = sent_id
            async with gw.session.request(method, url, headers=headers, **options) as answer:
                body = await answer.read()
                answers.append((answer.status, answer.headers["X-Request-Id"], sent_id))
            return json.loads(body) if body.startswith(b"{") else None

        # Registered by APQ, then the same GET twice: executed (miss), then a hit.
        found = await call(
            "POST",
            json={
                "query": FREE,
                "variables": {"near": NEAR},
                "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(FREE)}},
            },
        )
        await call("GET", params={"extensions": apq, "variables": variables})
        await asyncio.sleep(0.2)
        await call("GET", "proxy-given.id_1", params={"extensions": apq, "variables": variables})
        # A booking system that refuses every connection (port 9, discard: nothing there).
        gw.store.add(replace(rest_definition(rest_server, "dead"), url="http://127.0.0.1:9/api"))
        await asyncio.sleep(0.4)  # the registry is read again every 0.1 s
        # A partner's trusted document, by its id, with its key.
        await call(
            "POST",
            "bad id!",
            json={"documentId": f"sha256:{sha256(NEAR_ME)}", "variables": {"near": NEAR}},
            headers={"Authorization": f"Bearer {key}"},
        )
        await call("POST", "x" * 129, json={"query": "{ nope }"})
        await call(
            "POST", data=b"{" + b" " * 200_000 + b"}", headers={"Content-Type": "application/json"}
        )
        await call("GET", "", params={"query": FREE, "variables": variables})
        await call("GET")  # not even a query
        slot_id = found["data"]["slots"]["edges"][0]["node"]["id"]
        await call("GET", url=gw.url.replace("/graphql", f"/go/{slot_id}"), allow_redirects=False)
        partner_again = {"documentId": sha256(NEAR_ME), "variables": {"near": NEAR}}
        await call("POST", json=partner_again, headers={"Authorization": f"Bearer {key}"})

    lines = [json.loads(r.getMessage()) for r in request_lines.records]
    assert len(lines) == len(answers)
    for line, (status, header_id, sent) in zip(lines, answers, strict=True):
        assert set(line) == FIELDS
        assert line["request_id"] == header_id
        assert line["status"] == status
        assert line["time"].endswith("Z")
        assert line["duration_ms"] >= 0
        if sent != "proxy-given.id_1":
            assert header_id != sent and len(header_id) == 32
    *graphql, hand_off, refused = lines
    assert all(line["route"] == "/graphql" for line in graphql)
    assert hand_off["route"] == "/go/{slot_id:path}"
    assert (refused["status"], refused["error_codes"]) == (429, ["RATE_LIMITED"])
    registered, missed, hit, partner, invalid, too_big, free_get, empty = graphql
    assert answers[2][1] == "proxy-given.id_1"
    assert (registered["operation"], registered["operation_type"]) == ("anonymous", "query")
    assert {s["id"]: s["outcome"] for s in registered["sources"]} == {
        "demo-fhir": "ok",
        "demo-rest": "ok",
    }
    assert (missed["cache"], hit["cache"], registered["cache"]) == ("miss", "hit", "none")
    assert hit["sources"] == [] and hit["operation"] is None
    assert all(s["from_cache"] for s in missed["sources"] if s["outcome"] == "ok")
    assert (partner["operation"], partner["operation_type"], partner["status"]) == (
        "NearMe",
        "query",
        200,
    )
    assert {s["id"]: s["outcome"] for s in partner["sources"]} == {
        "demo-fhir": "ok",
        "demo-rest": "ok",
        "dead": "SOURCE_UNAVAILABLE",
    }
    assert invalid["error_codes"] == ["GRAPHQL_VALIDATION_FAILED"]
    assert too_big["status"] == 413 and too_big["error_codes"]
    assert free_get["method"] == "GET" and free_get["operation"] == "anonymous"
    assert empty["operation"] is None and empty["cache"] == "none"

    text = "\n".join(
        record.getMessage()
        for record in [*request_lines.records, *caplog.records]
        if record.name.startswith(("passerelle", "uvicorn"))
    )
    secrets = (LATITUDE, LONGITUDE, "45.512", key, key.split("_")[-1], variables, slot_id)
    for secret in (*secrets, "latitude"):
        assert secret not in text


async def test_an_untrusted_peer_gets_a_new_id_and_development_a_human_line(
    request_lines: Lines,
) -> None:
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    proxies = (ipaddress.ip_network("10.0.0.0/8"),)
    log = RequestLog(app, Settings(trusted_proxies=proxies))  # type: ignore[arg-type]
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/go/some-slot-id",
        "query_string": b"",
        "headers": [(b"x-request-id", b"client-chosen")],
        "client": ("192.0.2.7", 5000),
    }
    logging.getLogger(LOGGER).setLevel(logging.INFO)
    await log(scope, None, send)  # type: ignore[arg-type]
    given = dict(sent[0]["headers"])[b"x-request-id"].decode()
    assert given != "client-chosen" and len(given) == 32
    line = request_lines.records[-1].getMessage()
    assert line.startswith("GET /go/… -> 204 ") and f"id={given}" in line
    assert "some-slot-id" not in line

    assert request_id(b"from-proxy", trusted=True) == "from-proxy"
    assert request_id(b"from-proxy", trusted=False) != "from-proxy"
    assert request_id(b"a" * 128, trusted=True) == "a" * 128
    assert request_id(b"a" * 129, trusted=True) != "a" * 129
    assert request_id(b"no/slash", trusted=True) != "no/slash"


async def test_a_websocket_logs_one_line_when_it_ends_with_its_id_and_no_whereabouts(
    gateway_for: GatewayFactory, fhir_server: TestServer, request_lines: Lines
) -> None:
    from tests.edge.subscriptions.wire import NEAR_ME as ALERT_NEAR_ME
    from tests.edge.subscriptions.wire import PROTOCOL, socket, ws_url

    settings: dict[str, Any] = {"env": "production", "cors_origins": ("https://rdv.example",)}
    async with gateway_for(fhir_definition(fhir_server), **settings) as gw:
        async with socket(gw) as ws:
            await ws.subscribe("1")
            assert await ws.quiet(0.2) == []
        logged = lambda: any("WEBSOCKET" in r.getMessage() for r in request_lines.records)  # noqa: E731
        async with asyncio.timeout(5):
            while not logged():  # noqa: ASYNC110  (the log, read from outside)
                await asyncio.sleep(0.02)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await gw.session.ws_connect(
                ws_url(gw), protocols=[PROTOCOL], headers={"Origin": "https://evil.example"}
            )
        assert refused.value.status == 403
        await asyncio.sleep(0.2)
    lines = [json.loads(r.getMessage()) for r in request_lines.records]
    sockets = [line for line in lines if line["method"] == "WEBSOCKET"]
    assert len(sockets) == 2, lines
    accepted, refused_line = sockets
    assert accepted["route"] == "/graphql" and accepted["status"] == 101
    assert accepted["closed_by"] == "client" and accepted["close_code"] == 1000
    assert accepted["duration_ms"] >= 200 and len(accepted["request_id"]) == 32
    assert refused_line["status"] == 403 and refused_line["closed_by"] == "server"
    text = " ".join(r.getMessage() for r in request_lines.records)
    latitude = str(ALERT_NEAR_ME["filter"]["near"]["latitude"])  # type: ignore[index]
    assert latitude not in text and "latitude" not in text


def test_production_lines_go_straight_to_the_installed_stream_unless_others_listen() -> None:
    """The production handler's stream gets each line whole; once another handler or a
    filter listens, lines go through ``logging`` and reach both."""
    import io

    from edge.middleware import request_log

    logger = logging.getLogger(LOGGER)
    saved = (logger.handlers[:], logger.filters[:], logger.level, logger.propagate)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._passerelle = True  # type: ignore[attr-defined]  # as install() marks it
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        request_log.write('{"request_id": "a"}')
        request_log.write('{"request_id": "b"}')
        assert stream.getvalue() == '{"request_id": "a"}\n{"request_id": "b"}\n'
        others = Lines()
        logger.addHandler(others)
        request_log.write('{"request_id": "c"}')
        assert stream.getvalue().endswith('{"request_id": "c"}\n')
        assert [r.getMessage() for r in others.records] == ['{"request_id": "c"}']
        logger.removeHandler(others)
        logger.setLevel(logging.WARNING)  # an operator turned request lines off
        request_log.write('{"request_id": "off"}')
        assert "off" not in stream.getvalue()
    finally:
        logger.handlers[:], logger.filters[:], level, logger.propagate = saved
        logger.setLevel(level)


async def test_behind_a_trusted_proxy_its_request_id_is_kept_for_any_client(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    """nginx on loopback (``--trusted-proxy 127.0.0.1``) forwards a client's request with
    ``X-Forwarded-For`` and its own ``X-Request-Id``: the gateway answers with that id,
    whatever the client's address (only ``--trusted-proxy`` decides whom to believe:
    uvicorn's own proxy-header rewriting, which made the peer look like the client and
    the id a stranger's, is off)."""
    async with gateway_for(
        fhir_definition(fhir_server),
        env="production",
        trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
    ) as gw:
        for n, client in enumerate(("203.0.113.5", "127.0.0.1", "2001:db8::7")):
            headers = {"X-Forwarded-For": client, "X-Request-Id": f"nginx-{n}"}
            body = {"query": "{ __typename }"}
            async with gw.session.post(gw.url, json=body, headers=headers) as answer:
                assert answer.status == 200
                assert answer.headers["X-Request-Id"] == f"nginx-{n}"
