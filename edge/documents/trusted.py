"""Trusted documents: reading a partner's manifest, and checking each document.

Two manifest formats are read, both as their tools write them:

- Apollo's ``generate-persisted-query-manifest``::

    {"format": "apollo-persisted-query-manifest", "version": 1,
     "operations": [{"id": "<sha256 of body>", "name": "Slots", "type": "query",
                     "body": "query Slots { ... }"}]}

  where ``id`` must be the SHA-256 of ``body`` (hex), as Apollo Client sends it;
- Relay's ``persist-output`` map, ``{"<id>": "<text>"}``, whose ids are whatever
  the compiler chose (md5, sha256...): they are kept as given.

Every document is checked by ``check_document`` before anything is stored; a
manifest with one bad document registers nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, parse

from schema import schema
from schema.cost import DEFAULT_MAX_COST, FirstTooLarge, operation_cost
from schema.limits import DEFAULT_LIMITS, check_limits
from schema.validation import validate_document
from sources.errors import ConfigError
from sources.registry.partners import ManifestDocument

__all__ = [
    "APOLLO_FORMAT",
    "MAX_DOCUMENT_BYTES",
    "MAX_DOCUMENT_ID_LENGTH",
    "ManifestDocument",
    "check_document",
    "operations_of",
    "parse_manifest",
    "read_manifest",
]

APOLLO_FORMAT = "apollo-persisted-query-manifest"
MAX_DOCUMENT_BYTES = 100 * 1024  # as for automatic persisted queries
MAX_DOCUMENT_ID_LENGTH = 256
_OPERATION_TYPES = ("query", "mutation", "subscription")


def check_document(text: str, *, max_cost: int | None = DEFAULT_MAX_COST) -> str | None:
    """What is wrong with a document a partner registers, or None if it may be registered.

    The single place that decides it: parse (within the token limit), validate
    against the gateway's schema (which has queries and subscriptions, so a
    mutation is refused here too), then the same operation limits and cost
    limit as every request (with the variables' defaults), so that a registered
    document is never one the gateway would refuse. ``max_cost`` must be the
    gateway's own (``--max-cost``; ``None`` with ``--measure-cost``, which refuses
    nothing for its cost).
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        return f"the document is larger than {MAX_DOCUMENT_BYTES // 1024} KiB"
    try:
        document = parse(text, max_tokens=DEFAULT_LIMITS.tokens)
    except GraphQLError as exc:
        return exc.message
    if not any(isinstance(d, OperationDefinitionNode) for d in document.definitions):
        return "the document has no operation (only fragments)"
    errors = validate_document(schema._schema, document) or check_limits(document, DEFAULT_LIMITS)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return errors[0].message + more
    try:
        cost = operation_cost(schema._schema, document)
    except FirstTooLarge as exc:
        return str(exc)
    if max_cost is not None and cost > max_cost:
        return f"the operation would cost {cost}, over the limit of {max_cost}"
    return None


def operations_of(text: str) -> list[tuple[str | None, str]]:
    """(name, type) of each operation of a document that parses; [] if it does not."""
    try:
        document = parse(text)
    except GraphQLError:
        return []
    return [
        (d.name.value if d.name else None, d.operation.value)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    ]


def read_manifest(path: Path, *, max_cost: int | None = DEFAULT_MAX_COST) -> list[ManifestDocument]:
    """The checked documents of a manifest file; ``ConfigError`` naming every problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the manifest {path}: {exc.strerror}") from None
    return parse_manifest(raw, where=str(path), max_cost=max_cost)


def parse_manifest(
    raw: bytes | str, *, where: str = "manifest", max_cost: int | None = DEFAULT_MAX_COST
) -> list[ManifestDocument]:
    """The checked documents of an Apollo or Relay manifest, each within ``max_cost``.

    ``ConfigError`` when it is not one, or when any document is refused: its
    message has one line per problem, each naming the operation and its id.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: expected an Apollo manifest "
            f'({{"format": "{APOLLO_FORMAT}", ...}}) or a Relay map ({{id: text}})'
        )
    apollo = "format" in data
    entries = _apollo_entries(data, where) if apollo else _relay_entries(data, where)
    documents: dict[str, ManifestDocument] = {}
    problems: list[str] = []
    for entry in entries:
        problem = _check_entry(entry, apollo=apollo, max_cost=max_cost)
        if problem is not None:
            problems.append(f"{_label(entry)}: {problem}")
            continue
        previous = documents.get(entry.id)
        if previous is not None and previous.body != entry.body:
            problems.append(f"{_label(entry)}: its id is listed twice with different bodies")
            continue
        documents[entry.id] = entry
    if len(problems) == 1:
        raise ConfigError(f"{where}: {problems[0]} (nothing registered)")
    if problems:
        raise ConfigError(
            f"{where}: {len(problems)} operations refused, nothing registered:\n  "
            + "\n  ".join(problems)
        )
    if not documents:
        raise ConfigError(f"{where}: no operations in the manifest")
    return list(documents.values())


def _apollo_entries(data: dict[str, Any], where: str) -> list[ManifestDocument]:
    if data.get("format") != APOLLO_FORMAT:
        raise ConfigError(f"{where}: unknown manifest format {data.get('format')!r}")
    if data.get("version") != 1:
        raise ConfigError(f"{where}: unsupported {APOLLO_FORMAT} version {data.get('version')!r}")
    operations = data.get("operations")
    if not isinstance(operations, list):
        raise ConfigError(f"{where}: 'operations' must be a list")
    entries = []
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict):
            raise ConfigError(f"{where}: operations[{index}] must be an object")
        missing = [
            k for k in ("id", "name", "type", "body") if not isinstance(operation.get(k), str)
        ]
        if missing:
            raise ConfigError(
                f"{where}: operations[{index}] needs string fields "
                f"{', '.join(repr(k) for k in missing)}"
            )
        entries.append(
            ManifestDocument(
                id=operation["id"].lower(),
                body=operation["body"],
                operation_name=operation["name"] or None,
                operation_type=operation["type"],
            )
        )
    return entries


def _relay_entries(data: dict[str, Any], where: str) -> list[ManifestDocument]:
    entries = []
    for document_id, body in data.items():
        if not isinstance(body, str):
            raise ConfigError(
                f"{where}: expected an Apollo manifest or a Relay map of id to document text; "
                f"the value of {document_id!r} is not text"
            )
        operations = operations_of(body)
        name, kind = operations[0] if operations else (None, "query")
        entries.append(
            ManifestDocument(id=document_id, body=body, operation_name=name, operation_type=kind)
        )
    return entries


def _check_entry(entry: ManifestDocument, *, apollo: bool, max_cost: int | None) -> str | None:
    if not entry.id or len(entry.id) > MAX_DOCUMENT_ID_LENGTH:
        return f"the id must be 1 to {MAX_DOCUMENT_ID_LENGTH} characters"
    problem = check_document(entry.body, max_cost=max_cost)
    if problem is not None:
        return problem
    if entry.operation_type not in _OPERATION_TYPES:
        return f"unknown operation type {entry.operation_type!r}"
    problems = []
    if apollo and entry.id != entry.body_sha256:
        # Apollo Client sends sha256(body) as the id: any other id could never match.
        problems.append(
            f"the id is not the SHA-256 of the body: given {entry.id}, "
            f"the body's is {entry.body_sha256}"
        )
    operations = operations_of(entry.body)
    if len(operations) == 1 and operations[0] != (entry.operation_name, entry.operation_type):
        problems.append(
            f"the manifest says {_operation(entry.operation_type, entry.operation_name)} "
            f"but the body holds {_operation(operations[0][1], operations[0][0])}"
        )
    return "; ".join(problems) or None


def _operation(kind: str, name: str | None) -> str:
    return f"{kind} {name!r}" if name else f"an anonymous {kind}"


def _label(entry: ManifestDocument) -> str:
    name = entry.operation_name or "(anonymous)"
    shown = entry.id if len(entry.id) <= 16 else entry.id[:12] + "..."
    return f"operation {name} (id {shown})"
