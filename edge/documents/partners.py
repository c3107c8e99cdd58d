"""Partner clients: API keys, trusted documents, persisted-only access.

``Partners.admit`` decides, before anything else (before automatic persisted
queries), what a request may run:

- no ``Authorization`` header: an anonymous request, run as it is;
- ``Authorization: Bearer KEY`` with an unknown or revoked key, or any other
  ``Authorization``: HTTP 401, ``UNAUTHENTICATED``;
- a client's key: the request runs as that client (``context.client_id``), may
  introspect if the client may (``--allow-introspection``), and may name one of
  its registered documents by id, as ``extensions.persistedQuery.sha256Hash``
  (Apollo) or ``documentId`` (GraphQL over HTTP; ``sha256:`` prefix optional);
- a persisted-only client runs nothing else: a query whose text is not one of its
  documents is refused (``PERSISTED_QUERY_REQUIRED``), an id it did not register
  too (``PERSISTED_QUERY_NOT_FOUND``); a log-only client is served instead, and
  the operation's hash is logged as a warning (never its variables).

    partners = Partners("sqlite:///data/passerelle.sqlite3", production=True)
    admitted = await partners.admit(operation, context, sub_response)

The clients and documents are held in memory, reloaded when the registry's
revision moves (checked at most once a second, on a request with a key): a
revoked key is refused within about a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

from starlette.responses import PlainTextResponse, Response
from strawberry.types.execution import ExecutionResult

from edge.documents.apq import is_sha256_digest
from edge.operation import Operation
from resolvers.context import RequestContext
from schema.error_codes import ErrorCode, error_result
from sources.registry.partners import Client, Document, PartnerStore, Snapshot, sha256_hex

__all__ = ["Partners"]

logger = logging.getLogger("passerelle.partners")

REFRESH_S = 1.0
# A log-only client's unregistered operation is logged once a minute at most.
LOG_EVERY_S = 60.0
_MAX_KEY_LENGTH = 256


class Partners:
    """Admits requests by their key and the documents their client registered.

    ``database_url``: the registry database (upgraded when opened); ``pepper``: the
    value of ``PASSERELLE_KEY_PEPPER``, if set.
    """

    def __init__(
        self,
        database_url: str,
        *,
        production: bool = False,
        pepper: str | None = None,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self._store = PartnerStore(database_url, pepper=pepper)
        self._refresh_s = refresh_s
        self._snapshot = self._store.snapshot()
        self._checked = time.monotonic()
        self._logged: dict[tuple[str, str], float] = {}
        self._report_other_peppers(self._snapshot)
        if production and not self._store.pepper_from_environment:
            logger.warning(
                "partner keys are hashed with a pepper kept in the registry database: set "
                "PASSERELLE_KEY_PEPPER so that a copy of the database alone cannot check keys"
            )

    async def admit(
        self, operation: Operation, context: RequestContext, sub_response: Any
    ) -> Operation | ExecutionResult:
        """The operation to run (its document resolved), or the error to answer with."""
        authorization = operation.authorization
        client: Client | None = None
        snapshot = self._snapshot
        if authorization is not None:
            snapshot = await self._current()
            found = _authenticate(authorization, snapshot)
            if isinstance(found, str):
                sub_response.status_code = ErrorCode.UNAUTHENTICATED.http_status
                sub_response.headers["www-authenticate"] = 'Bearer realm="passerelle"'
                return error_result(ErrorCode.UNAUTHENTICATED, found)
            client = found
            context.client_id = client.name
            if client.allow_introspection:
                context.allow_introspection = True
            if client.operator:
                context.operator_view = True
        return await self._resolve(operation, client, snapshot)

    async def client_of(self, authorization: str | None) -> Client | None:
        """The valid client of an ``Authorization`` header, or None (absent or refused:
        ``admit`` says why later)."""
        found = await self.identify(authorization)
        return None if isinstance(found, str) else found

    async def identify(self, authorization: str | None) -> Client | str | None:
        """The client of an ``Authorization`` value; None without one; why it is refused
        (a WebSocket's key, checked once when the connection opens)."""
        if authorization is None:
            return None
        return _authenticate(authorization, await self._current())

    async def operator_refusal(self, authorization: str | None) -> Response | None:
        """None when ``authorization`` is an operator's key, else the answer refusing it
        (401 without a valid key, 403 for a key not an operator's), for the operators'
        pages in production (``/metrics``, ``/status``'s operator view)."""
        found = await self.identify(authorization)
        if found is None or isinstance(found, str):
            headers = {"www-authenticate": 'Bearer realm="passerelle"'}
            return PlainTextResponse("an operator key is required\n", 401, headers=headers)
        if not found.operator:
            return PlainTextResponse("this key is not an operator's\n", 403)
        return None

    async def aclose(self) -> None:
        """Release what the partner registry holds."""
        self._store.close()

    # -- documents --------------------------------------------------------------------

    async def _resolve(
        self, data: Operation, client: Client | None, snapshot: Snapshot
    ) -> Operation | ExecutionResult:
        extensions = dict(data.extensions or {})
        persisted = extensions.get("persistedQuery")
        sent_id: str | None = None
        if isinstance(persisted, dict) and isinstance(persisted.get("sha256Hash"), str):
            sent_id = persisted["sha256Hash"]
        by_document_id = False
        if sent_id is None and data.query is None:
            sent_id = data.document_id
            by_document_id = sent_id is not None
        strict = client is not None and client.persisted_only and not client.log_only

        if sent_id is not None:
            document = _registered(snapshot, client, sent_id)
            if document is not None:
                if data.query is not None and sha256_hex(data.query) != document.body_sha256:
                    return error_result(
                        ErrorCode.PERSISTED_QUERY_HASH_MISMATCH,
                        "the query sent is not the document registered under that id",
                    )
                extensions.pop("persistedQuery", None)
                trusted = (document.operation_name or "", document.operation_type)
                return replace(
                    data, query=document.body, extensions=extensions or None, trusted=trusted
                )
            if data.query is None:
                if client is not None and client.persisted_only:
                    if strict:
                        return error_result(
                            ErrorCode.PERSISTED_QUERY_NOT_FOUND,
                            "no document is registered for this client under that id",
                        )
                    self._log_unregistered(client, sent_id.removeprefix("sha256:").lower())
                if by_document_id:
                    # Not a trusted document: maybe a query registered by APQ.
                    digest = sent_id.removeprefix("sha256:")
                    if not is_sha256_digest(digest):
                        return error_result(
                            ErrorCode.PERSISTED_QUERY_NOT_FOUND,
                            "no document is registered under that id",
                        )
                    extensions["persistedQuery"] = {"version": 1, "sha256Hash": digest.lower()}
                    return replace(data, extensions=extensions)
                return data  # APQ looks it up

        if data.query is None or client is None or not client.persisted_only:
            return data
        digest = sha256_hex(data.query)
        if digest in snapshot.documents_by_body.get(client.name, {}):
            return data  # one of its documents, sent in full
        if strict:
            return error_result(
                ErrorCode.PERSISTED_QUERY_REQUIRED,
                "this client may only run its registered documents: send the document's id "
                "as extensions.persistedQuery.sha256Hash or documentId",
            )
        self._log_unregistered(client, digest)
        return data

    def _log_unregistered(self, client: Client, digest: str) -> None:
        now = time.monotonic()
        key = (client.name, digest)
        if now - self._logged.get(key, -LOG_EVERY_S) < LOG_EVERY_S:
            return
        if len(self._logged) > 10_000:
            self._logged.clear()
        self._logged[key] = now
        logger.warning(
            "client %s ran an operation it has not registered (sha256:%s); served because "
            "the client is log-only, refused once it is persisted-only",
            client.name,
            digest,
        )

    # -- the snapshot -----------------------------------------------------------------

    async def _current(self) -> Snapshot:
        """The snapshot, reloaded first when the registry changed (checked at most once
        per ``refresh_s``; requests meanwhile use the one at hand)."""
        now = time.monotonic()
        if now - self._checked < self._refresh_s:
            return self._snapshot
        self._checked = now
        try:
            revision = await asyncio.to_thread(self._store.revision)
            if revision != self._snapshot.revision:
                snapshot = await asyncio.to_thread(self._store.snapshot)
                self._report_other_peppers(snapshot)
                self._snapshot = snapshot
        except Exception:  # a database hiccup must not refuse every partner
            logger.exception("partner registry refresh failed; keeping the clients loaded")
        return self._snapshot

    def _report_other_peppers(self, snapshot: Snapshot) -> None:
        others = sorted(
            c.name
            for c in snapshot.clients_by_key_hash.values()
            if c.pepper_id != snapshot.pepper_id and not c.revoked
        )
        if others:
            logger.error(
                "the keys of clients %s were hashed with another pepper than this gateway's "
                "(PASSERELLE_KEY_PEPPER differs from where they were created): they cannot "
                "authenticate",
                ", ".join(others),
            )


def _authenticate(authorization: str, snapshot: Snapshot) -> Client | str:
    """The client of an ``Authorization`` header, or why it is refused."""
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or " " in key:
        return "the Authorization header must be 'Bearer <API key>'"
    if len(key) > _MAX_KEY_LENGTH:
        return "the API key is not valid"
    client = snapshot.client_for_key(key)
    if client is None or client.revoked:
        return "the API key is not valid"
    return client


def _registered(snapshot: Snapshot, client: Client | None, sent_id: str) -> Document | None:
    if client is None:
        return None
    documents = snapshot.documents.get(client.name)
    if not documents:
        return None
    stripped = sent_id.removeprefix("sha256:")
    return documents.get(sent_id) or documents.get(stripped) or documents.get(stripped.lower())
