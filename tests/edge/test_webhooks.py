"""Webhook alerts through a live gateway: partners only, their own alerts only, the
edge's rules for mutations (persisted-only partners, no GET, CSRF), and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.documents.trusted import parse_manifest
from sources.registry.partners import PartnerStore
from sources.webhooks import WebhookStore
from tests.conftest import Gateway, GatewayFactory
from tests.edge.test_partners import apollo, sha256
from tests.sources.webhooks.receiver import Receiver, https_receiver

ROOT = Path(__file__).resolve().parents[2]
CREATE = """mutation Create ($url: String!, $expiresAt: DateTime) {
  createSlotAlertWebhook(
    filter: {near: {latitude: 45.50174, longitude: -73.56731}, radiusKm: 5}
    callbackUrl: $url, expiresAt: $expiresAt
  ) { signingSecret webhook { id expiresAt state { paused pending } } }
}"""
LIST = "query Hooks { slotAlertWebhooks { id callbackUrl state { paused pending delivered } } }"
HOOK = "https://hooks.example/a"
DELETE = "mutation Delete($id: ID!) { deleteSlotAlertWebhook(id: $id) }"


@pytest.fixture
def partners(registry_url: str) -> Iterator[PartnerStore]:
    with PartnerStore(registry_url) as store:
        yield store


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    async with https_receiver(tmp_path) as r:
        yield r


async def call(
    gw: Gateway, query: str, variables: dict[str, Any] | None = None, key: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"query": query, "variables": variables or {}}
    async with gw.session.post(gw.url, json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result


def code(result: dict[str, Any]) -> str:
    return str(result["errors"][0]["extensions"]["code"])


async def test_partners_create_list_and_delete_their_own_alerts_only(
    gateway_for: GatewayFactory, partners: PartnerStore, receiver: Receiver, registry_url: str
) -> None:
    _, mine = partners.create_client("rdv-app")
    _, theirs = partners.create_client("other-app")
    async with gateway_for(webhook_allow_hosts=("127.0.0.1",)) as gw:
        anonymous = await call(gw, CREATE, {"url": receiver.url})
        assert code(anonymous) == "UNAUTHENTICATED" and anonymous["data"] is None
        assert code(await call(gw, LIST)) == "UNAUTHENTICATED"
        made = await call(gw, CREATE, {"url": receiver.url}, mine)
        created = made["data"]["createSlotAlertWebhook"]
        alert_id = created["webhook"]["id"]
        assert created["signingSecret"].startswith("whsec_")
        assert created["webhook"]["state"] == {"paused": False, "pending": 0}
        # Seven days after the pinned clock, in Montreal time.
        assert created["webhook"]["expiresAt"].startswith("2026-11-")
        listed = (await call(gw, LIST, key=mine))["data"]["slotAlertWebhooks"]
        assert [a["id"] for a in listed] == [alert_id]
        assert (await call(gw, LIST, key=theirs))["data"]["slotAlertWebhooks"] == []
        other = await call(gw, DELETE, {"id": alert_id}, theirs)
        assert code(other) == "NOT_FOUND"
        # The secret is not kept: only the point, rounded, and the URL are.
        with WebhookStore(registry_url) as store:
            [kept] = store.alerts()
            assert kept.filter["near"] == [45.5, -73.57]
            assert created["signingSecret"] not in json.dumps(kept.filter)
        assert (await call(gw, DELETE, {"id": alert_id}, mine))["data"] == {
            "deleteSlotAlertWebhook": alert_id
        }
        assert (await call(gw, LIST, key=mine))["data"]["slotAlertWebhooks"] == []


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"url": "http://hooks.example/a"}, "CALLBACK_REFUSED"),
        ({"url": "https://10.0.0.1/a"}, "CALLBACK_REFUSED"),
        ({"url": HOOK, "expiresAt": "2027-03-01T00:00:00-05:00"}, "BAD_USER_INPUT"),
        ({"url": HOOK, "expiresAt": "2020-01-01T00:00:00-05:00"}, "BAD_USER_INPUT"),
    ],
)  # fmt: skip
async def test_bad_callbacks_and_expiries_get_a_clear_code(
    gateway_for: GatewayFactory,
    partners: PartnerStore,
    variables: dict[str, str],
    expected: str,
) -> None:
    _, key = partners.create_client("rdv-app")
    async with gateway_for() as gw:
        result = await call(gw, CREATE, variables, key)
        assert code(result) == expected, result
        assert (
            "hooks.example" not in result["errors"][0]["message"] or expected != "CALLBACK_REFUSED"
        )


async def test_mutations_obey_the_edge_rules(
    gateway_for: GatewayFactory, partners: PartnerStore, receiver: Receiver
) -> None:
    _, key = partners.create_client("rdv-app", persisted_only=True)
    _, other = partners.create_client("other-app")
    partners.push_documents("rdv-app", parse_manifest(json.dumps(apollo(CREATE, LIST))))
    auth = {"Authorization": f"Bearer {key}"}
    async with gateway_for(webhook_allow_hosts=("127.0.0.1",)) as gw:
        # A persisted-only partner: its registered mutation by id, nothing else.
        by_id = {
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(CREATE)}},
            "variables": {"url": receiver.url},
        }
        async with gw.session.post(gw.url, json=by_id, headers=auth) as response:
            made = await response.json()
        assert made["data"]["createSlotAlertWebhook"]["webhook"]["id"].startswith("wha_")
        free = {"query": DELETE, "variables": {"id": "x"}}
        async with gw.session.post(gw.url, json=free, headers=auth) as response:
            assert code(await response.json()) == "PERSISTED_QUERY_REQUIRED"
        # Never over GET, even for a key that may send any query.
        params = {"query": 'mutation { deleteSlotAlertWebhook(id: "x") }'}
        plain = {"Authorization": f"Bearer {other}"}
        async with gw.session.get(gw.url, params=params, headers=plain) as response:
            assert response.status == 400
            assert "mutations are not allowed when using GET" in await response.text()
        # A simple POST a browser could send cross-site: refused by CSRF prevention.
        async with gw.session.post(
            gw.url, data=json.dumps(free), headers={**auth, "Content-Type": "text/plain"}
        ) as response:
            assert response.status == 400
            assert code(await response.json()) == "CSRF_PREVENTION"


def test_the_operator_lists_pauses_resumes_and_deletes_any_alert(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    with PartnerStore(database) as partners:
        partners.create_client("rdv-app")
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    with WebhookStore(database) as store:
        alert = store.create(
            "rdv-app", {}, "https://hooks.example/secret-path", now + timedelta(days=1), now
        )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "app.py"), "webhooks", *args, "--database-url", database],
            capture_output=True, text=True, check=False, timeout=60, cwd=tmp_path,
        )  # fmt: skip

    listed = cli("list")
    assert listed.returncode == 0 and alert.id in listed.stdout and "active" in listed.stdout
    assert "secret-path" not in listed.stdout
    assert cli("pause", alert.id).returncode == 0
    assert "paused" in cli("list", "--client", "rdv-app").stdout
    assert cli("resume", alert.id).returncode == 0
    assert cli("delete", alert.id).stdout.strip() == f"{alert.id} deleted"
    missing = cli("delete", alert.id)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == f"passerelle: no webhook alert {alert.id!r}"
    assert cli("list").stdout.strip() == "no webhook alerts"


async def test_a_mutation_sent_twice_runs_twice_and_is_never_answered_from_the_cache(
    gateway_for: GatewayFactory, partners: PartnerStore, receiver: Receiver
) -> None:
    _, key = partners.create_client("rdv-app", persisted_only=True)
    partners.push_documents("rdv-app", parse_manifest(json.dumps(apollo(CREATE, LIST))))
    auth = {"Authorization": f"Bearer {key}"}
    by_id = {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(CREATE)}},
        "variables": {"url": receiver.url},
    }
    async with gateway_for(webhook_allow_hosts=("127.0.0.1",)) as gw:
        made = []
        for _ in range(2):
            async with gw.session.post(gw.url, json=by_id, headers=auth) as response:
                assert response.headers.get("X-Cache") != "HIT"
                made.append((await response.json())["data"]["createSlotAlertWebhook"])
        first, second = (m["webhook"]["id"] for m in made)
        assert first != second and made[0]["signingSecret"] != made[1]["signingSecret"]
        # Its registered listing shows both.
        hooks = (await call(gw, LIST, key=key))["data"]["slotAlertWebhooks"]
        assert {h["id"] for h in hooks} == {first, second}


async def test_a_production_gateway_without_its_webhook_key_delivers_none_and_says_so(
    gateway_for: GatewayFactory, partners: PartnerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PASSERELLE_WEBHOOK_KEY", raising=False)
    _, key = partners.create_client("rdv-app")
    async with gateway_for(env="production") as gw:
        refused = await call(gw, CREATE, {"url": HOOK}, key)
    assert code(refused) == "WEBHOOKS_UNAVAILABLE" and refused["data"] is None
