"""The edge's rules for subscriptions, message by message: keys, persisted documents,
rate limits, the caps per connection, IP and key, origins, production mode, keep-alives,
the goodbye, and never a cached answer. (Real clients: ``test_clients.py``.)"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from edge.documents.trusted import APOLLO_FORMAT, operations_of, parse_manifest
from edge.operation import Operation
from edge.services import services_of
from sources.registry.partners import PartnerStore
from tests.conftest import Gateway, GatewayFactory, fhir_definition
from tests.edge.subscriptions.wire import (
    ALERTS,
    MULTIPART,
    NEAR_ME,
    PROTOCOL,
    codes,
    multipart,
    parts,
    socket,
    ws_url,
)

ALERTS_ID = hashlib.sha256(ALERTS.encode()).hexdigest()
PERSISTED = {"persistedQuery": {"version": 1, "sha256Hash": ALERTS_ID}}


def open_leases(gateway: Gateway) -> int:
    return services_of(gateway.app).subscriptions.limits.open_count()


async def eventually(check: Any, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110  (the gateway's state, read from outside)
            await asyncio.sleep(0.02)


@pytest.fixture
def partners(registry_url: str) -> Any:
    with PartnerStore(registry_url) as store:
        yield store


def partner(store: PartnerStore, name: str, *documents: str, **options: Any) -> str:
    _, key = store.create_client(name, **options)
    if documents:
        operations = [
            {"id": hashlib.sha256(d.encode()).hexdigest(), "body": d, "name": n or "", "type": t}
            for d in documents
            for n, t in operations_of(d)
        ]
        manifest = {"format": APOLLO_FORMAT, "version": 1, "operations": operations}
        store.push_documents(name, parse_manifest(json.dumps(manifest)))
    return key


# -- the protocol, and the one operation's steps ------------------------------------------


async def test_a_websocket_subscription_is_pinged_outlives_the_deadline_and_completes(
    gateway_for: GatewayFactory,
) -> None:
    async with (
        gateway_for(ws_keepalive_s=0.1, operation_timeout_s=0.3) as gw,
        socket(gw) as ws,
    ):
        await ws.subscribe("1")
        await eventually(lambda: open_leases(gw) == 1)
        # Longer than the operation deadline, which bounds only its setup: still open.
        assert await ws.quiet(0.6) == []
        assert ws.pings >= 3  # keep-alives, answered by the client's pongs
        await ws.ws.send_json({"type": "ping"})
        assert await ws.receive() == {"type": "pong"}
        await ws.complete("1")
        await eventually(lambda: open_leases(gw) == 0)
        # A bad filter is refused at once, with the query's own code.
        await ws.subscribe("2", variables={"filter": {"radiusKm": 5}})
        assert codes(await ws.receive()) == ["BAD_USER_INPUT"]
        await ws.subscribe("3", query="subscription { slotAlerts(filter: {}) { nope } }")
        assert codes(await ws.receive()) == ["GRAPHQL_VALIDATION_FAILED"]
        await ws.subscribe("4", query="subscription { slotAlerts(")
        assert codes(await ws.receive()) == ["GRAPHQL_PARSE_FAILED"]
        assert open_leases(gw) == 0


async def test_keys_come_from_connection_init_or_the_handshake_and_a_bad_one_is_closed_4403(
    gateway_for: GatewayFactory, partners: PartnerStore
) -> None:
    key = partner(partners, "rdv-app", ALERTS, persisted_only=True)
    raw = "subscription { slotAlerts(filter: {}) { seenAt } }"
    async with gateway_for() as gw:
        # Browsers cannot set headers on a WebSocket: the key in connection_init's payload.
        async with socket(gw, init={"Authorization": f"Bearer {key}"}) as ws:
            await ws.subscribe("raw", query=raw, variables={})
            assert codes(await ws.receive()) == ["PERSISTED_QUERY_REQUIRED"]
            await ws.subscribe("text", query=ALERTS)  # its registered document, in full
            await ws.subscribe("id", query=None, extensions=PERSISTED)  # ...or by its id
            await ws.subscribe("other-id", query=None, extensions={"persistedQuery": {
                "version": 1, "sha256Hash": "ab" * 32}})  # fmt: skip
            assert codes(await ws.receive()) == ["PERSISTED_QUERY_NOT_FOUND"]
            await eventually(lambda: open_leases(gw) == 2)
        # In connection_init's headers (GraphiQL), or the handshake's header.
        for init, headers in (
            ({"headers": {"authorization": f"Bearer {key}"}}, {}),
            ({}, {"Authorization": f"Bearer {key}"}),
        ):
            async with socket(gw, init=init, headers=headers) as ws:
                await ws.subscribe("raw", query=raw, variables={})
                assert codes(await ws.receive()) == ["PERSISTED_QUERY_REQUIRED"]
        # Anonymous: a raw document is fine.
        async with socket(gw) as ws:
            await ws.subscribe("raw", query=raw, variables={})
            assert await ws.quiet(0.3) == []
        # An unknown key: the connection is refused, 4403.
        async with gw.session.ws_connect(ws_url(gw), protocols=[PROTOCOL]) as ws:
            unknown = {"Authorization": "Bearer psk_nope"}
            await ws.send_json({"type": "connection_init", "payload": unknown})
            message = await ws.receive(timeout=5)
            assert (message.type, ws.close_code) == (aiohttp.WSMsgType.CLOSE, 4403)
            assert message.extra == "Forbidden: the API key is not valid"
        # Multipart: the Authorization header, the same rules.
        response = await multipart(gw, {"query": raw}, Authorization=f"Bearer {key}")
        body = await response.json(content_type=None)
        assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
        response = await multipart(gw, {"extensions": PERSISTED, "variables": NEAR_ME},
                                   Authorization=f"Bearer {key}")  # fmt: skip
        assert (await parts(response, 1)) == [{}]  # the stream is open: a first heartbeat
        response.close()


async def test_a_websocket_over_its_rate_is_refused(gateway_for: GatewayFactory) -> None:
    async with gateway_for(env="production", anonymous_rate=0.5) as gw:  # a burst of 1
        async with gw.session.ws_connect(ws_url(gw), protocols=[PROTOCOL]) as ws:
            await ws.send_json({"type": "connection_init"})
            message = await ws.receive(timeout=5)  # connection_init was one request...
            assert json.loads(message.data) == {"type": "connection_ack"}
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {
                "query": ALERTS, "variables": NEAR_ME}})  # fmt: skip
            error = json.loads((await ws.receive(timeout=5)).data)  # ...and this another
        assert codes(error) == ["RATE_LIMITED"]
        assert error["payload"][0]["extensions"]["retryAfter"] >= 1
        async with gw.session.ws_connect(ws_url(gw), protocols=[PROTOCOL]) as ws:
            await ws.send_json({"type": "connection_init"})
            message = await ws.receive(timeout=5)
            assert (message.type, ws.close_code) == (aiohttp.WSMsgType.CLOSE, 4429)
            assert message.extra.startswith("Too many requests")


# -- the caps -------------------------------------------------------------------------


async def test_at_most_n_subscriptions_on_one_connection(gateway_for: GatewayFactory) -> None:
    async with gateway_for(subscriptions_per_connection=2) as gw, socket(gw) as ws:
        await ws.subscribe("1")
        await ws.subscribe("2")
        await ws.subscribe("3")
        refused = await ws.receive()
        assert refused["id"] == "3" and codes(refused) == ["SUBSCRIPTION_LIMIT"]
        assert "at most 2 on one connection" in refused["payload"][0]["message"]
        await ws.complete("1")
        await eventually(lambda: open_leases(gw) == 1)
        await ws.subscribe("3")  # a place was given back
        assert await ws.quiet(0.3) == []
        assert open_leases(gw) == 2


async def test_at_most_n_subscriptions_of_one_ip_without_a_key_over_any_transport(
    gateway_for: GatewayFactory, partners: PartnerStore
) -> None:
    key = partner(partners, "relay")
    async with gateway_for(subscriptions_per_ip=3) as gw:
        async with socket(gw) as one, socket(gw) as two:
            await one.subscribe("1")
            await two.subscribe("1")
            stream = await multipart(gw, {"query": ALERTS, "variables": NEAR_ME})
            assert await parts(stream, 1) == [{}]
            await eventually(lambda: open_leases(gw) == 3)
            await two.subscribe("2")
            refused = await two.receive()
            assert codes(refused) == ["SUBSCRIPTION_LIMIT"]
            assert "at most 3 for this address" in refused["payload"][0]["message"]
            async with await multipart(gw, {"query": ALERTS, "variables": NEAR_ME}) as over:
                assert over.status == 429
                body = await over.json(content_type=None)
            assert body["errors"][0]["extensions"]["code"] == "SUBSCRIPTION_LIMIT"
            # A partner's key is held to its own cap, not to its address's.
            async with socket(gw, init={"Authorization": f"Bearer {key}"}) as keyed:
                await keyed.subscribe("1")
                assert await keyed.quiet(0.3) == []
            stream.close()  # the client leaves: its place is given back
            await eventually(lambda: open_leases(gw) == 2)
            await two.subscribe("3")
            assert await two.quiet(0.3) == []


async def test_at_most_n_subscriptions_of_one_key(
    gateway_for: GatewayFactory, partners: PartnerStore
) -> None:
    key = partner(partners, "rdv-app")
    own = partner(partners, "big-app", max_subscriptions=3)
    auth = {"Authorization": f"Bearer {key}"}
    async with gateway_for(subscriptions_per_key=2) as gw:
        async with socket(gw, init=auth) as one, socket(gw, headers=auth) as two:
            await one.subscribe("1")
            await two.subscribe("1")
            await eventually(lambda: open_leases(gw) == 2)
            await one.subscribe("2")
            refused = await one.receive()
            assert codes(refused) == ["SUBSCRIPTION_LIMIT"]
            assert "at most 2 for this API key" in refused["payload"][0]["message"]
            async with await multipart(gw, {"query": ALERTS, "variables": NEAR_ME}, **auth) as over:
                assert over.status == 429
            async with socket(gw) as anonymous:  # the same address, without the key
                await anonymous.subscribe("1")
                assert await anonymous.quiet(0.3) == []
        # A partner's own cap (clients create --max-subscriptions) comes first.
        async with socket(gw, init={"Authorization": f"Bearer {own}"}) as ws:
            for n in range(4):
                await ws.subscribe(str(n))
            refused = await ws.receive()
            assert refused["id"] == "3" and codes(refused) == ["SUBSCRIPTION_LIMIT"]


# -- origins, production, the goodbye, the cache ------------------------------------------


async def test_a_browser_websocket_from_an_origin_not_allowed_is_refused_at_the_handshake(
    gateway_for: GatewayFactory,
) -> None:
    async with gateway_for(cors_origins=("https://rdv.example",)) as gw:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await gw.session.ws_connect(
                ws_url(gw), protocols=[PROTOCOL], headers={"Origin": "https://evil.example"}
            )
        assert refused.value.status == 403
        origin = gw.url.removesuffix("/graphql")  # the gateway's own page: GraphiQL
        for headers in ({"Origin": "https://rdv.example"}, {"Origin": origin}, {}):
            async with socket(gw, headers=headers) as ws:  # no Origin: not a browser
                await ws.subscribe("1")
                assert await ws.quiet(0.1) == []


async def test_production_refuses_introspection_and_suggests_nothing(
    gateway_for: GatewayFactory,
) -> None:
    async with gateway_for(env="production") as gw, socket(gw) as ws:
        await ws.subscribe("1", query="{ __schema { queryType { name } } }", variables={})
        assert codes(await ws.receive()) == ["INTROSPECTION_DISABLED"]
        typo = "subscription { slotAlerts(filter: {}) { seenAtt } }"
        await ws.subscribe("2", query=typo, variables={})
        error = await ws.receive()
        assert codes(error) == ["GRAPHQL_VALIDATION_FAILED"]
        assert "Did you mean" not in error["payload"][0]["message"]
        async with await multipart(gw, {"query": typo}) as response:
            # The stream is open: the error is its one event, then it completes.
            (event,) = [p for p in await parts(response) if p != {}]
        error = event["payload"]["errors"][0]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "Did you mean" not in error["message"]


async def test_the_server_going_away_closes_websockets_1001_and_ends_multipart_streams(
    gateway_for: GatewayFactory,
) -> None:
    async with aiohttp.ClientSession() as client:  # outlives the gateway's own session
        async with gateway_for() as gw:
            ws = await client.ws_connect(ws_url(gw), protocols=[PROTOCOL])
            await ws.send_json({"type": "connection_init"})
            await ws.receive(timeout=5)
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {
                "query": ALERTS, "variables": NEAR_ME}})  # fmt: skip
            stream = await client.post(
                gw.url, json={"query": ALERTS, "variables": NEAR_ME}, headers={"Accept": MULTIPART}
            )
            assert await parts(stream, 1) == [{}]
            await eventually(lambda: open_leases(gw) == 2)
        # The gateway has stopped (uvicorn's graceful shutdown, through the gateway's server).
        message = await ws.receive(timeout=5)
        assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1001)
        assert message.extra == "The server is going away; reconnect"
        rest = await asyncio.wait_for(stream.content.read(), 5)
        assert rest.endswith(b"\r\n--graphql--\r\n")  # the closing boundary: complete


async def test_subscriptions_are_never_answered_from_or_kept_in_the_response_cache(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    query = (
        "query Ids($near: GeoPointInput) { slots(filter: {near: $near}) { edges { node { id } } } }"
    )
    digest = hashlib.sha256(query.encode()).hexdigest()
    by_hash = {
        "extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest}}),
        "variables": json.dumps({"near": {"latitude": 45.5, "longitude": -73.57}}),
    }
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        result = await gw.query(
            query,
            json.loads(by_hash["variables"]),
            extensions={"persistedQuery": {"version": 1, "sha256Hash": digest}},
        )
        assert result["data"]["slots"]["edges"] and "errors" not in result
        for _ in range(2):  # executed, then a hit: that answer is cached
            async with gw.session.get(gw.url, params=by_hash) as response:
                cached = response.headers["X-Cache"]
        assert cached == "HIT"
        # The same GET asking for a multipart stream: refused, never the cached answer.
        async with gw.session.get(
            gw.url, params=by_hash, headers={"Accept": MULTIPART}
        ) as response:
            assert response.status == 405
            assert "X-Cache" not in response.headers
        # A subscription sent by hash alone over POST: streamed, never stored.
        services = services_of(gw.app)
        cache = services.response_cache
        assert cache is not None
        # Were it looked up as a query's would be, this answer would be found.
        as_a_query = Operation("POST", variables=NEAR_ME, extensions=PERSISTED)
        planted = cache.key(as_a_query, services.pool.fingerprint)
        assert planted is not None
        sources = [{"id": "demo-fhir", "status": "UP", "ageSeconds": 0.0, "fromCache": False}]
        stale = {"slotAlerts": {"opened": [], "goneIds": [], "seenAt": "2026-11-16T07:30:00-05:00"}}
        assert await cache.put(planted, stale, {"sources": sources}, {"demo-fhir": 60.0}) > 0
        before = len(cache.backend)  # type: ignore[arg-type]  # the in-process store
        body = {"query": ALERTS, "extensions": PERSISTED, "variables": NEAR_ME}
        async with await multipart(gw, body) as stream:  # registered by APQ as it streams
            assert await parts(stream, 1) == [{}]
        async with await multipart(gw, {"extensions": PERSISTED, "variables": NEAR_ME}) as stream:
            assert stream.headers["Cache-Control"] == "no-store"
            assert "X-Cache" not in stream.headers
            assert stream.headers["Content-Type"].startswith("multipart/mixed")
            assert await parts(stream, 1) == [{}]
        assert len(cache.backend) == before  # type: ignore[arg-type]


async def test_a_subscription_asked_for_one_answer_or_over_get_is_refused(
    gateway_for: GatewayFactory,
) -> None:
    async with gateway_for() as gw:
        body = {"query": ALERTS, "variables": NEAR_ME}
        async with gw.session.post(gw.url, json=body) as response:
            assert response.status == 400
            assert "multipart/mixed;subscriptionSpec=1.0" in await response.text()
        params = {"query": ALERTS, "variables": json.dumps(NEAR_ME)}
        for accept in ("application/json", MULTIPART):
            async with gw.session.get(
                gw.url, params=params, headers={"Accept": accept}
            ) as response:
                assert response.status == 405
                assert "not served over GET" in await response.text()
        assert open_leases(gw) == 0


async def test_a_revoked_key_ends_its_open_subscriptions_on_both_transports(
    gateway_for: GatewayFactory, partners: PartnerStore
) -> None:
    key = partner(partners, "revoked-later")
    kept = partner(partners, "kept")
    async with gateway_for(subscription_key_check_s=0.2) as gw:
        async with (
            socket(gw, init={"Authorization": f"Bearer {key}"}) as revoked_ws,
            socket(gw, init={"Authorization": f"Bearer {kept}"}) as kept_ws,
            socket(gw) as anonymous_ws,
        ):
            for ws in (revoked_ws, kept_ws, anonymous_ws):
                await ws.subscribe("1")
            response = await multipart(gw, {"query": ALERTS, "variables": NEAR_ME},
                                       Authorization=f"Bearer {key}")  # fmt: skip
            assert (await parts(response, 1)) == [{}]  # open: a first heartbeat
            await eventually(lambda: open_leases(gw) == 4)
            assert await revoked_ws.quiet(0.5) == []  # checked, and still valid

            assert partners.revoke_client("revoked-later")
            message = await revoked_ws.ws.receive(timeout=5)
            assert (message.type, revoked_ws.ws.close_code) == (aiohttp.WSMsgType.CLOSE, 4403)
            assert message.extra == "Forbidden: the API key is not valid"
            rest = await parts(response)  # the stream's last parts, to its closing boundary
            last = [part for part in rest if part != {}][-1]
            assert last["payload"] is None
            assert [e["extensions"]["code"] for e in last["errors"]] == ["UNAUTHENTICATED"]
            response.close()
            # The other key's and the anonymous subscriptions go on.
            assert await kept_ws.quiet(0.5) == [] and await anonymous_ws.quiet(0.1) == []
            assert not kept_ws.ws.closed and not anonymous_ws.ws.closed
            await eventually(lambda: open_leases(gw) == 2)
