"""One parsed operation: a request is read once, by one set of rules, whatever carried it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer
from cross_web import HTTPException

import edge.exchange
from edge.middleware.cached_hits import HitResponse
from edge.middleware.response_cache import Hit
from edge.operation import Operation, read_operations
from tests.conftest import GatewayFactory, fhir_definition

QUERY = "query Sources { sources { id status } }"
DIGEST = hashlib.sha256(QUERY.encode()).hexdigest()
PERSISTED = {"persistedQuery": {"version": 1, "sha256Hash": DIGEST.upper()}}


def test_a_get_and_a_post_of_the_same_operation_read_alike() -> None:
    by_get = read_operations(
        "GET",
        {"extensions": json.dumps(PERSISTED), "variables": '{"n": 1}', "operationName": "Q"},
        authorization=None,
    )
    by_post = read_operations(
        "POST",
        orjson.dumps({"extensions": PERSISTED, "variables": {"n": 1}, "operationName": "Q"}),
        authorization=None,
        content_type="application/json; charset=utf-8",
    )
    assert isinstance(by_get, Operation) and isinstance(by_post, Operation)
    assert (by_get.variables, by_get.extensions) == (by_post.variables, by_post.extensions)
    assert by_get.persisted_hash == by_post.persisted_hash == DIGEST  # lower-case


@pytest.mark.parametrize(
    ("sent", "cache_id"),
    [
        ({"documentId": "sha256:" + DIGEST}, DIGEST),
        ({"documentId": "relay-7"}, "relay-7"),  # Relay ids are kept as given
        ({"extensions": PERSISTED, "documentId": DIGEST}, DIGEST),
        ({"extensions": PERSISTED, "documentId": "other"}, None),  # two documents named
        ({"extensions": PERSISTED, "query": QUERY}, None),  # the text is run, not looked up
        ({"documentId": ""}, None),
    ],
)
def test_the_document_an_operation_names(sent: dict[str, Any], cache_id: str | None) -> None:
    operation = read_operations(
        "POST", orjson.dumps(sent), authorization=None, content_type="application/json"
    )
    assert isinstance(operation, Operation) and operation.cache_id == cache_id


@pytest.mark.parametrize(
    ("method", "payload", "reason"),
    [
        ("POST", b"{bad", "Unable to parse request body as JSON"),
        ("POST", b"5", "The GraphQL request must be a JSON object"),  # strawberry: a 500
        ("POST", b"[]", "Batching is not enabled"),
        ("POST", b'{"variables": "x"}', "`variables` must be an object or null"),
        ("GET", {"extensions": ""}, "`extensions` must be an object or null"),
        ("GET", {"variables": "{x"}, "Unable to parse request body as JSON"),
    ],
)
def test_an_unreadable_request_is_a_400_in_strawberrys_words(
    method: str, payload: Any, reason: str
) -> None:
    with pytest.raises(HTTPException) as refused:
        read_operations(method, payload, authorization=None, content_type="application/json")
    assert refused.value.status_code == 400 and reason in refused.value.reason


def test_a_batch_is_a_list_of_operations_within_its_limit() -> None:
    body = orjson.dumps([{"query": QUERY}, {"extensions": PERSISTED}])
    batch = read_operations(
        "POST", body, authorization="Bearer k", content_type="application/json", max_batch=2
    )
    assert isinstance(batch, list) and [o.query for o in batch] == [QUERY, None]
    assert all(o.authorization == "Bearer k" for o in batch)
    with pytest.raises(HTTPException, match="Too many operations"):
        read_operations("POST", body, authorization=None, content_type="application/json",
                        max_batch=1)  # fmt: skip


async def test_a_post_body_is_read_once_for_every_step(
    gateway_for: GatewayFactory, fhir_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []

    def counted(method: str, *args: Any, **kwargs: Any) -> Operation | list[Operation]:
        reads.append(method)
        return read_operations(method, *args, **kwargs)

    monkeypatch.setattr(edge.exchange, "read_operations", counted)
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        # Response cache, admission, APQ (registering) and execution: one read.
        result = await gw.query(QUERY, extensions=PERSISTED)
        assert result["data"]["sources"] and reads == ["POST"]
        result = await gw.query(None, extensions=PERSISTED)  # type: ignore[arg-type]
        assert result["data"]["sources"] and reads == ["POST", "POST"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_cached_hit_is_written_one_way(method: str) -> None:
    hit = Hit(b'{"data":{}}', 'W/"abc"', 30)
    response = HitResponse(
        hit, method=method, accept="application/graphql-response+json", if_none_match=""
    )
    headers = dict(response.raw_headers)
    assert response.status_code == 200 and response.body == hit.body
    assert headers[b"content-type"] == b"application/graphql-response+json; charset=utf-8"
    assert headers[b"x-cache"] == b"HIT" and headers[b"content-length"] == b"11"
    cached = {b"cache-control": b"public, max-age=30", b"etag": b'W/"abc"'}
    assert (cached.items() <= headers.items()) == (method == "GET")
    again = HitResponse(hit, method=method, accept="", if_none_match='W/"abc"')
    assert again.status_code == (304 if method == "GET" else 200)
