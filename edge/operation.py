"""One GraphQL request as the client sent it: :class:`Operation`, read once.

Whatever carried it (a GET's query string, a POST's JSON body), a request is
read here once, by :func:`read_operations`, into frozen ``Operation`` values
that every step takes as they are: the response cache (its key), partner
admission (its key and document id), automatic persisted queries (its hash),
then strawberry (the view hands it over as strawberry's request data). The
rules for what a request may hold are strawberry's own, with its messages (a
``400``), so that GraphQL over HTTP behaves as before::

    operation = read_operations("GET", {"extensions": '{"persistedQuery": ...}'},
                                authorization=None)
    operation.persisted_hash  # extensions.persistedQuery.sha256Hash, lower-case

The media type of the answer is chosen here too (:func:`response_media_type`), from
the ``Accept`` header, for the fast path and the view alike, and so is the transport
(:func:`stream_protocol`): a subscription asked over HTTP streams as Apollo's
``multipart/mixed;subscriptionSpec=1.0``; one over a WebSocket is read by
``edge/subscriptions/websocket.py`` into the same ``Operation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cross_web import HTTPException  # what strawberry 0.341 raises for a 400 (its HTTP layer)
from strawberry.http.streaming import MultipartSubscriptionTransport

__all__ = [
    "GRAPHQL_RESPONSE",
    "HTTP",
    "JSON",
    "MULTIPART",
    "VARY",
    "WEBSOCKET",
    "Operation",
    "read_operations",
    "response_media_type",
    "stream_protocol",
]

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
# A shared cache must keep answers apart by media type, and never answer a request
# with a key (admission and its own limits must run) from an anonymous copy.
VARY = "Accept, Authorization"
_NOT_JSON = "Unable to parse request body as JSON"

# How an operation travels, in strawberry's words where it has them: one answer over
# HTTP, a multipart stream over HTTP, or messages over a graphql-transport-ws socket.
HTTP = "http"
MULTIPART = MultipartSubscriptionTransport.protocol
WEBSOCKET = "graphql-transport-ws"
_MULTIPART = MultipartSubscriptionTransport()


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a request: what to run, and who asks.

    ``document_id`` is ``documentId`` as sent (GraphQL over HTTP persisted
    documents; ``sha256:`` prefix optional), ``authorization`` the client's
    ``Authorization`` header (its key; on a WebSocket, what its ``connection_init``
    carried), ``method`` ``GET`` or ``POST`` (a WebSocket's handshake is a ``GET``),
    ``protocol`` how its answer travels: ``HTTP``, ``MULTIPART`` or ``WEBSOCKET``;
    ``trusted`` the partner document it runs (set by admission; the request logs' name and
    type; ``trusted_name`` its name, the metrics' operation label).
    """

    method: str
    query: str | None = None
    operation_name: str | None = None
    variables: dict[str, Any] | None = None
    extensions: dict[str, Any] | None = None
    document_id: str | None = None
    authorization: str | None = None
    protocol: str = HTTP
    # The trusted document it runs, once admission found it: (its name or "", its type).
    trusted: tuple[str, str] | None = None

    @property
    def trusted_name(self) -> str | None:
        """The trusted document's operation name, once admission found it."""
        if self.trusted is None:
            return None
        return self.trusted[0] or "unnamed_document"

    @property
    def streamed(self) -> bool:
        """Whether its answer is a stream (a subscription), never one cacheable body."""
        return self.protocol != HTTP

    @property
    def persisted_hash(self) -> str | None:
        """``extensions.persistedQuery.sha256Hash`` (APQ), lower-case, if it is text."""
        persisted = (self.extensions or {}).get("persistedQuery")
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        return digest.lower() if isinstance(digest, str) and digest else None

    @property
    def cache_id(self) -> str | None:
        """The id of the document a hash-only request runs, for the response cache; None
        when it sends its text (run, and its hash checked), or names two documents (which
        one runs is admission's business: a key taken from the other would let one
        document's answer be stored under another's id)."""
        if self.query:
            return None
        digest = self.persisted_hash
        named = self.document_id.removeprefix("sha256:") if self.document_id else None
        if named and digest and named.lower() != digest:
            return None
        return digest or named or None


def read_operations(
    method: str,
    payload: Mapping[str, str] | bytes,
    *,
    authorization: str | None,
    content_type: str = "",
    max_batch: int | None = None,
    protocol: str = HTTP,
) -> Operation | list[Operation]:
    """What a request asks: ``payload`` is a GET's query parameters or a POST's body
    (of ``content_type``); one operation, or a batch (a list) of at most ``max_batch``
    (``None``: batching is off); ``protocol`` what the ``Accept`` header asked
    (:func:`stream_protocol`). ``HTTPException`` (400) says why a request is unreadable,
    in strawberry's words.

    The media type is the header's first part, as strawberry's ``parse_content_type``
    has it, without its ``email.message`` parser (10 µs: a fifth of a cached hit).
    """
    if method == "GET":
        data: Any = _query_params(payload) if isinstance(payload, Mapping) else {}
    elif "application/json" in content_type.split(";", 1)[0].strip():
        data = _json(payload if isinstance(payload, bytes) else b"")
    else:
        raise HTTPException(400, "Unsupported content type")
    if isinstance(data, list):
        if max_batch is None:
            raise HTTPException(400, "Batching is not enabled")
        if protocol == MULTIPART:
            raise HTTPException(400, _MULTIPART.batching_error)
        if len(data) > max_batch:
            raise HTTPException(400, "Too many operations")
        # As strawberry reads a batch: each item as it is, documentId left aside.
        return [
            Operation(
                method,
                item.get("query"),
                item.get("operationName"),
                item.get("variables"),
                item.get("extensions"),
                authorization=authorization,
            )
            for item in map(_object, data)
        ]
    data = _object(data)
    for name, kind, what in (
        ("query", str, "a string"),
        ("variables", dict, "an object"),
        ("extensions", dict, "an object"),
    ):
        if not isinstance(data.get(name), (kind, type(None))):
            raise HTTPException(
                400, f"The GraphQL operation's `{name}` must be {what} or null, if provided."
            )
    document_id = data.get("documentId")
    return Operation(
        method,
        data.get("query"),
        data.get("operationName"),
        data.get("variables"),
        data.get("extensions"),
        document_id if isinstance(document_id, str) and document_id else None,
        authorization,
        protocol,
    )


def stream_protocol(accept: str | None) -> str:
    """``MULTIPART`` when the ``Accept`` header asks for Apollo's multipart subscriptions
    (``multipart/mixed;subscriptionSpec=1.0``, as strawberry reads it), else ``HTTP``."""
    if not accept or "subscriptionspec" not in accept.lower():
        return HTTP  # the common case, without parsing the header
    return MULTIPART if _MULTIPART.accepts(accept) else HTTP


def _query_params(params: Mapping[str, str]) -> dict[str, Any]:
    """As strawberry reads a GET: ``variables`` and ``extensions`` are JSON, when not empty."""
    data: dict[str, Any] = dict(params)
    for name in ("variables", "extensions"):
        if data.get(name):
            data[name] = _json(data[name])
    return data


def _json(text: str | bytes) -> Any:
    # orjson refuses what the stdlib chokes on with a 500: nesting deeper than 1024
    # levels, lone surrogates. Both are a 400, "not JSON".
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise HTTPException(400, _NOT_JSON) from None


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        # strawberry 0.341 fails on these with a 500 (it calls .get on them).
        raise HTTPException(400, "The GraphQL request must be a JSON object")
    return data


def response_media_type(accept: str | None) -> str:
    """``application/graphql-response+json`` when the client prefers it (or accepts it
    and not ``application/json``), else ``application/json`` (GraphQL over HTTP)."""
    if not accept:
        return JSON
    weights: dict[str, float] = {}
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        weights[kind.lower()] = max(q, weights.get(kind.lower(), 0.0))
    graphql_q = weights.get(GRAPHQL_RESPONSE, 0.0)
    json_q = weights.get(JSON, 0.0)
    return GRAPHQL_RESPONSE if graphql_q > 0 and graphql_q >= json_q else JSON
