"""Partner keys and trusted documents: the command line, the store, and a live gateway."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from aiohttp.test_utils import TestServer
from sqlalchemy import text
from starlette.responses import Response

import app
from edge.documents.partners import Partners
from edge.documents.trusted import check_document, parse_manifest
from edge.operation import Operation
from sources.errors import ConfigError
from sources.registry.partners import KEY_PREFIX, PartnerStore
from tests.conftest import Gateway, GatewayFactory, fhir_definition

ROOT = Path(__file__).resolve().parents[2]
SOURCES = "query Sources { sources { id status } }"
IDS = "query Ids { sources { id } }"
FREE = "{ sources { id } }"
INTROSPECTION = "{ __schema { queryType { name } } }"


def sha256(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def apollo(*bodies: str, **changes: Any) -> dict[str, Any]:
    operations = []
    for body in bodies:
        name = body.split()[1] if body.startswith(("query ", "mutation ", "subscription ")) else ""
        kind = body.split()[0] if name else "query"
        operations.append({"id": sha256(body), "name": name, "type": kind, "body": body, **changes})
    return {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}


def test_a_manifest_entry_with_a_wrong_id_names_the_entry_the_id_and_the_real_hash() -> None:
    body = "{ sources { id } }"
    wrong = "ab" * 32
    manifest = apollo(body, id=wrong, name="Sources")
    with pytest.raises(ConfigError) as caught:
        parse_manifest(json.dumps(manifest))
    message = str(caught.value)
    assert "operation Sources (id abababababab...)" in message
    assert f"given {wrong}, the body's is {sha256(body)}" in message
    assert "the body holds an anonymous query" in message
    assert "None" not in message


def code(result: dict[str, Any]) -> str:
    return str(result["errors"][0]["extensions"]["code"])


# -- the command line, as an operator runs it ----------------------------------------


def cli(*args: str, database: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args, "--database-url", f"sqlite:///{database}"],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=60,
    )


def test_clients_and_documents_from_the_command_line(tmp_path: Path) -> None:
    database = tmp_path / "registry.sqlite3"
    created = cli(
        "clients", "create", "rdv-app", "--persisted-only", "--rate-limit", "5",
        "--max-subscriptions", "20", database=database, cwd=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith(KEY_PREFIX) and len(key) > 40
    assert "shown only this once" in created.stderr

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(apollo(SOURCES, IDS)))
    pushed = cli("documents", "push", str(manifest), "--client", "rdv-app",
                 database=database, cwd=tmp_path)  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.strip() == "rdv-app: 2 new document(s) registered, 0 already there"
    again = cli("documents", "push", str(manifest), "--client", "rdv-app",
                database=database, cwd=tmp_path)  # fmt: skip
    assert again.stdout.strip() == "rdv-app: 0 new document(s) registered, 2 already there"
    listed = cli("documents", "list", "--client", "rdv-app", database=database, cwd=tmp_path)
    assert [line.split("\t")[:3] for line in listed.stdout.splitlines()] == [
        [sha256(IDS), "query", "Ids"],  # by operation name
        [sha256(SOURCES), "query", "Sources"],
    ]

    assert cli("clients", "revoke", "rdv-app", database=database, cwd=tmp_path).returncode == 0
    clients = cli("clients", "list", database=database, cwd=tmp_path).stdout
    name, options, created_at, state = clients.strip().split("\t")
    assert (name, options) == (
        "rdv-app",
        "persisted-only, rate limit 5/s, at most 20 subscriptions",
    )
    assert created_at.startswith("created ") and state.startswith("revoked ")
    assert key not in clients

    # Stored only as HMAC-SHA256(pepper, key): the key appears nowhere in the file.
    assert key.encode() not in database.read_bytes()
    with sqlite3.connect(database) as connection:
        (key_hash,) = connection.execute("SELECT key_hash FROM partner_client").fetchone()
        (pepper,) = connection.execute(
            "SELECT value FROM gateway_setting WHERE name = 'key_pepper'"
        ).fetchone()
    assert key_hash == hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("clients", "create", "Not_Valid"), "a client name must be 1 to 63 characters"),
        (
            ("clients", "create", "x", "--rate-limit", "0"),
            "must be a number of requests/s of at least 0.01",
        ),
        (
            ("clients", "create", "x", "--rate-limit", "nan"),
            "must be a number of requests/s of at least 0.01",
        ),
        (
            ("clients", "create", "x", "--rate-limit", "1e-320"),
            "must be a number of requests/s of at least 0.01",
        ),
        (
            ("clients", "create", "x", "--rate-limit", "fast"),
            "--rate-limit: 'fast' is not a number of requests per second",
        ),
        (("clients", "create", "x", "--max-subscriptions", "0"), "must be at least 1, got 0"),
        (("clients", "create", "taken"), "client 'taken' already exists (active)"),
        (("clients", "revoke", "nobody"), "no client named 'nobody'"),
        (("clients", "update", "nobody", "--log-only"), "no client named 'nobody'"),
        (("documents", "list", "--client", "nobody"), "no client named 'nobody'"),
        (("documents", "push", "missing.json", "--client", "taken"), "cannot read the manifest"),
        (("documents", "push", "m.json", "--client", "nobody"), "no client named 'nobody'"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], expected: str
) -> None:
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    with PartnerStore(url) as store:
        store.create_client("taken")
    (tmp_path / "m.json").write_text(json.dumps(apollo(SOURCES)))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        try:
            status = app.main([*args, "--database-url", url])
        except SystemExit as exit:  # argparse
            status = exit.code  # type: ignore[assignment]
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert expected in err[-1]
    assert not any("Traceback" in line for line in err)


def test_update_switches_a_client_from_log_only_to_enforced(tmp_path: Path) -> None:
    with PartnerStore(f"sqlite:///{tmp_path / 'r.sqlite3'}") as store:
        store.create_client("rollout", log_only=True, rate_limit_rps=2)
        assert store.client("rollout").flags == ("persisted-only", "log-only")
        updated = store.update_client("rollout", log_only=False, rate_limit_rps=None)
        assert updated.flags == ("persisted-only",) and updated.rate_limit_rps is None
        assert store.update_client("rollout", max_subscriptions=3).max_subscriptions == 3
        assert store.update_client("rollout", max_subscriptions=None).max_subscriptions is None
        assert store.update_client("rollout", persisted_only=False).flags == ()


# -- manifests --------------------------------------------------------------------------


def test_apollo_and_relay_manifests_are_read() -> None:
    documents = parse_manifest(json.dumps(apollo(SOURCES, IDS)))
    assert [(d.id, d.operation_name, d.operation_type) for d in documents] == [
        (sha256(SOURCES), "Sources", "query"),
        (sha256(IDS), "Ids", "query"),
    ]
    relay = parse_manifest(json.dumps({"9f86d081884c7d65": SOURCES, "md5:abc": IDS}))
    assert [(d.id, d.operation_name, d.body_sha256) for d in relay] == [
        ("9f86d081884c7d65", "Sources", sha256(SOURCES)),
        ("md5:abc", "Ids", sha256(IDS)),
    ]


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (b"{not json", "manifest: not JSON"),
        (b"[]", "expected an Apollo manifest"),
        (b'{"format": "persisted-queries", "version": 1}', "unknown manifest format"),
        (
            b'{"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}',
            "unsupported apollo-persisted-query-manifest version 2",
        ),
        (
            json.dumps({"format": "apollo-persisted-query-manifest", "version": 1}).encode(),
            "'operations' must be a list",
        ),
        (json.dumps(apollo(SOURCES, id="ab" * 32)), "the id is not the SHA-256 of the body"),
        (json.dumps(apollo("query Broken { sources { id ")), "operation Broken"),
        (json.dumps(apollo("query Broken { sources { id ")), "Syntax Error"),
        (
            json.dumps(apollo("query Typo { sourcez { id } }")),
            "operation Typo (id ",
        ),
        (
            json.dumps(apollo("query Typo { sourcez { id } }")),
            "Cannot query field 'sourcez' on type 'Query'",
        ),
        (
            json.dumps(apollo("mutation Book { book }")),
            "operation Book (id ",
        ),
        (
            json.dumps(apollo("mutation Book { book }")),
            "Cannot query field 'book' on type 'Mutation'",
        ),
        (
            json.dumps(apollo("subscription Watch { slots }")),
            "Cannot query field 'slots' on type 'Subscription'",
        ),
        (json.dumps(apollo(SOURCES, name="Other")), "says query 'Other' but the body holds"),
        (json.dumps({"r1": "query R { nope }"}), "operation R (id r1): Cannot query field"),
        (json.dumps({"r1": 7}), "the value of 'r1' is not text"),
        (json.dumps({"": SOURCES}), "the id must be 1 to 256 characters"),
        (json.dumps({}), "no operations in the manifest"),
        # The limits every request gets apply to registered documents too.
        (
            json.dumps(
                {"r1": "query A { " + " ".join(f"a{i}: sources {{ id }}" for i in range(16)) + " }"}
            ),
            "The operation uses 16 aliases; at most 15 are allowed",
        ),
        (
            json.dumps({"r1": "query T { " + "sources { id } " * 300 + "}"}),
            "Document contains more than 1000 tokens",
        ),
        (
            json.dumps(
                {"r1": "query F { slots(filter: {region: LAVAL}, first: 500) { totalCount } }"}
            ),
            "first must be between 0 and 100, got 500",
        ),
        (
            json.dumps(
                {
                    "r1": "query C { clinics(first: 100) { edges { node { name "
                    "nextSlots(first: 100) { start clinic { name } } } } } }"
                }
            ),
            "the operation would cost",
        ),
    ],
)
def test_bad_manifests_are_refused_naming_the_operation_and_the_problem(
    manifest: str | bytes, expected: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_manifest(manifest)
    assert expected in str(refused.value)


def test_every_problem_of_a_manifest_is_listed_and_nothing_registered() -> None:
    manifest = apollo(SOURCES, "query Typo { sourcez }", "query Broken {")
    with pytest.raises(ConfigError) as refused:
        parse_manifest(json.dumps(manifest), where="m.json")
    lines = str(refused.value).splitlines()
    assert lines[0] == "m.json: 2 operations refused, nothing registered:"
    assert "operation Typo" in lines[1] and "operation Broken" in lines[2]


def test_check_document_is_the_single_gate() -> None:
    assert check_document(SOURCES) is None
    assert check_document("fragment F on Query { sources { id } }") is not None
    assert check_document("{ " + "sources { id } " * 10_000 + "}") is not None  # > 100 KiB


# Costs 5,650: over the default limit (5,000), under a gateway's --max-cost 10000.
COSTLY = (
    "query Costly { clinics(first: 50) { edges { node { name physicians { displayName } "
    "nextSlots(first: 100) { start } } } } }"
)


def test_documents_are_checked_against_the_configured_cost_limit() -> None:
    assert check_document(SOURCES, max_cost=5) == "the operation would cost 10, over the limit of 5"
    assert check_document(COSTLY) is not None  # the default limit
    assert check_document(COSTLY, max_cost=10_000) is None
    assert check_document(COSTLY, max_cost=None) is None  # --measure-cost refuses nothing
    with pytest.raises(ConfigError, match="over the limit of 5"):
        parse_manifest(json.dumps(apollo(SOURCES)), max_cost=5)


def test_documents_push_uses_the_gateways_max_cost(tmp_path: Path) -> None:
    database = tmp_path / "registry.sqlite3"
    assert cli("clients", "create", "rdv-app", database=database, cwd=tmp_path).returncode == 0
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(apollo(SOURCES)))
    refused = cli("documents", "push", str(manifest), "--client", "rdv-app", "--max-cost", "5",
                  database=database, cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 2
    assert "would cost 10, over the limit of 5" in refused.stderr
    # The flags the server is started with, given before the command, count as well.
    refused = cli("--max-cost", "5", "documents", "push", str(manifest), "--client", "rdv-app",
                  database=database, cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 2
    manifest.write_text(json.dumps(apollo(COSTLY)))
    pushed = cli("documents", "push", str(manifest), "--client", "rdv-app", "--max-cost", "10000",
                 database=database, cwd=tmp_path)  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    measured = cli("documents", "push", str(manifest), "--client", "rdv-app", "--measure-cost",
                   database=database, cwd=tmp_path)  # fmt: skip
    assert measured.returncode == 0, measured.stderr


# -- the store on SQLite and PostgreSQL ---------------------------------------------------


def test_pushing_is_idempotent_and_an_id_is_never_reused(database_url: str) -> None:
    with PartnerStore(database_url) as store:
        store.create_client("a")
        first = store.push_documents("a", parse_manifest(json.dumps(apollo(SOURCES))))
        second = store.push_documents("a", parse_manifest(json.dumps(apollo(SOURCES, IDS))))
        assert (first.added, first.unchanged) == ((sha256(SOURCES),), ())
        assert (second.added, second.unchanged) == ((sha256(IDS),), (sha256(SOURCES),))
        store.push_documents("a", parse_manifest(json.dumps({"r1": SOURCES})))
        with pytest.raises(ConfigError, match="must not be reused for another text"):
            store.push_documents("a", parse_manifest(json.dumps({"r1": IDS, "r2": IDS})))
        assert len(store.documents("a")) == 3  # r2 was not registered either
        revision = store.revision()
        assert store.revoke_client("a") is True and store.revoke_client("a") is False
        assert store.revision() > revision
        with pytest.raises(ConfigError, match="client 'a' is revoked"):
            store.push_documents("a", parse_manifest(json.dumps({"r3": IDS})))
        with pytest.raises(ConfigError, match=r"client 'a' already exists \(revoked"):
            store.create_client("a")


def test_a_pepper_from_the_environment_is_never_stored(database_url: str) -> None:
    pepper = "p" * 40
    with PartnerStore(database_url, pepper=pepper) as store:
        client, key = store.create_client("a")
        assert client.key_hash == hmac.new(pepper.encode(), key.encode(), "sha256").hexdigest()
        assert store.snapshot().client_for_key(key) == client
    engine = sqlalchemy.create_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM gateway_setting")).scalar() == 0
    engine.dispose()
    # Without it, the key no longer matches, and the listing says why.
    with PartnerStore(database_url) as store:
        assert store.snapshot().client_for_key(key) is None
        assert store.clients()[0].pepper_id != store.pepper_id
    with pytest.raises(ConfigError, match="PASSERELLE_KEY_PEPPER must be at least 32"):
        PartnerStore(database_url, pepper="short")


# -- admission, in a live gateway -----------------------------------------------------------


async def post(
    gateway: Gateway, body: dict[str, Any], key: str | None = None, **headers: str
) -> tuple[int, Any]:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    async with gateway.session.post(gateway.url, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def get(gateway: Gateway, params: dict[str, str], key: str | None = None) -> tuple[int, Any]:
    headers = {"Accept": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    async with gateway.session.get(gateway.url, params=params, headers=headers) as response:
        return response.status, await response.json(content_type=None)


def persisted(body: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256(body)}}


@pytest.fixture
def partners(registry_url: str) -> Iterator[PartnerStore]:
    with PartnerStore(registry_url) as store:
        yield store


def client_with(store: PartnerStore, name: str, *bodies: str, **options: Any) -> str:
    _, key = store.create_client(name, **options)
    if bodies:
        store.push_documents(name, parse_manifest(json.dumps(apollo(*bodies))))
    return key


async def test_a_persisted_only_key_runs_its_documents_and_nothing_else(
    gateway_for: GatewayFactory, fhir_server: TestServer, partners: PartnerStore
) -> None:
    key = client_with(partners, "rdv-app", SOURCES, persisted_only=True)
    client_with(partners, "other-app", IDS)
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        # Not searched yet, but its capabilities probe at start answered: UP.
        expected = {"sources": [{"id": "demo-fhir", "status": "UP"}]}
        by_hash = await post(gw, {"extensions": persisted(SOURCES)}, key)
        assert by_hash == (200, {"data": expected})
        for document_id in (sha256(SOURCES), f"sha256:{sha256(SOURCES)}"):
            assert await post(gw, {"documentId": document_id}, key) == (200, {"data": expected})
            assert await get(gw, {"documentId": document_id}, key) == (200, {"data": expected})
        ext = {"extensions": json.dumps(persisted(SOURCES))}
        assert await get(gw, ext, key) == (200, {"data": expected})
        # Its own document sent in full is the same document.
        assert await post(gw, {"query": SOURCES}, key) == (200, {"data": expected})

        status, refused = await post(gw, {"query": FREE}, key)
        assert (status, code(refused), refused.get("data")) == (
            200,
            "PERSISTED_QUERY_REQUIRED",
            None,
        )
        assert "registered documents" in refused["errors"][0]["message"]
        status, refused = await get(gw, {"query": FREE}, key)
        assert code(refused) == "PERSISTED_QUERY_REQUIRED"
        # Another client's document, or an id nobody registered.
        for body in ({"documentId": sha256(IDS)}, {"extensions": persisted(IDS)}):
            status, refused = await post(gw, body, key)
            assert code(refused) == "PERSISTED_QUERY_NOT_FOUND"
        # An APQ registration is a free-form query too.
        status, refused = await post(gw, {"query": IDS, "extensions": persisted(IDS)}, key)
        assert code(refused) == "PERSISTED_QUERY_REQUIRED"
        status, refused = await post(gw, {"query": IDS, "extensions": persisted(SOURCES)}, key)
        assert code(refused) == "PERSISTED_QUERY_HASH_MISMATCH"


async def test_other_clients_and_anonymous_requests_run_as_before(
    gateway_for: GatewayFactory, fhir_server: TestServer, partners: PartnerStore
) -> None:
    key = client_with(partners, "explorer", SOURCES)
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        for who in (key, None):
            status, result = await post(gw, {"query": FREE}, who)
            assert status == 200 and result["data"]["sources"]
        # A client's registered id, as documentId; APQ still works for everyone.
        status, result = await post(gw, {"documentId": sha256(SOURCES)}, key)
        assert result["data"]["sources"][0]["status"] == "UP"  # its probe answered
        status, result = await post(gw, {"documentId": sha256(SOURCES)})
        assert code(result) == "PERSISTED_QUERY_NOT_FOUND"  # not anonymous's: APQ has none
        await post(gw, {"query": IDS, "extensions": persisted(IDS)})
        for who in (key, None):
            status, result = await post(gw, {"documentId": f"sha256:{sha256(IDS)}"}, who)
            assert result["data"]["sources"] == [{"id": "demo-fhir"}]
        status, result = await post(gw, {"documentId": "relay-id-1"})
        assert code(result) == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_log_only_client_is_served_and_its_unknown_operations_logged(
    gateway_for: GatewayFactory,
    fhir_server: TestServer,
    partners: PartnerStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = client_with(partners, "rollout", SOURCES, log_only=True)
    secret = "RAMQ-LAPM-1234-5678"
    query = "query Mine($show: Boolean!) { sources @include(if: $show) { id } }"
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        with caplog.at_level(logging.WARNING, logger="passerelle.partners"):
            status, result = await post(
                gw, {"query": query, "variables": {"show": True, "patient": secret}}, key
            )
            assert status == 200 and result["data"]["sources"] == [{"id": "demo-fhir"}]
            status, result = await post(gw, {"extensions": persisted(SOURCES)}, key)
            assert result["data"]["sources"]  # its registered ones are not logged
            # Apollo's APQ link: the hash alone (not found), then the query with its hash.
            status, result = await post(gw, {"extensions": persisted(IDS)}, key)
            assert code(result) == "PERSISTED_QUERY_NOT_FOUND"
            status, result = await post(gw, {"query": IDS, "extensions": persisted(IDS)}, key)
            assert result["data"]["sources"] == [{"id": "demo-fhir"}]
    warnings = [r.getMessage() for r in caplog.records if r.name == "passerelle.partners"]
    assert len(warnings) == 2, warnings  # once per operation (at most once a minute)
    assert (
        f"client rollout ran an operation it has not registered (sha256:{sha256(query)})"
        in (warnings[0])
    )
    assert sha256(IDS) in warnings[1]
    assert not any(secret in w or "sources" in w for w in warnings)


async def test_unknown_revoked_and_malformed_keys_get_a_401(
    gateway_for: GatewayFactory, fhir_server: TestServer, partners: PartnerStore
) -> None:
    revoked = client_with(partners, "gone", SOURCES)
    partners.revoke_client("gone")
    live = client_with(partners, "soon-gone")
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        for key in (revoked, KEY_PREFIX + "x" * 43, "x" * 1000):
            async with gw.session.post(
                gw.url, json={"query": FREE}, headers={"Authorization": f"Bearer {key}"}
            ) as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                result = await response.json()
            assert code(result) == "UNAUTHENTICATED" and result.get("data") is None
            assert result["errors"][0]["message"] == "the API key is not valid"
            assert key not in json.dumps(result)
        for header in ("Basic dXNlcjpwYXNz", "Bearer", revoked, ""):
            async with gw.session.post(
                gw.url, json={"query": FREE}, headers={"Authorization": header}
            ) as response:
                assert response.status == 401
                result = await response.json()
            assert code(result) == "UNAUTHENTICATED"
            assert "must be 'Bearer <API key>'" in result["errors"][0]["message"]

        assert (await post(gw, {"query": FREE}, live))[0] == 200
        partners.revoke_client("soon-gone")
        await asyncio.sleep(1.2)  # the gateway checks the registry once a second
        assert (await post(gw, {"query": FREE}, live))[0] == 401


async def test_a_key_may_allow_introspection_in_production(
    gateway_for: GatewayFactory, fhir_server: TestServer, partners: PartnerStore
) -> None:
    allowed = client_with(partners, "tooling", allow_introspection=True)
    plain = client_with(partners, "plain")
    async with gateway_for(fhir_definition(fhir_server), env="production") as gw:
        introspected = await post(gw, {"query": INTROSPECTION}, allowed)
        assert introspected == (200, {"data": {"__schema": {"queryType": {"name": "Query"}}}})
        for key in (plain, None):
            _, result = await post(gw, {"query": INTROSPECTION}, key)
            assert code(result) == "INTROSPECTION_DISABLED"


async def test_admit_names_the_client_on_the_request_context(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    with PartnerStore(url) as store:
        _, key = store.create_client("named", allow_introspection=True)
    partners = Partners(url, production=True)

    class Context:
        client_id: str | None = None
        allow_introspection = False

    context = Context()
    operation = Operation("POST", FREE, authorization=f"Bearer {key}")
    admitted = await partners.admit(operation, context, Response())  # type: ignore[arg-type]
    assert admitted is operation
    assert (context.client_id, context.allow_introspection) == ("named", True)
    await partners.aclose()
