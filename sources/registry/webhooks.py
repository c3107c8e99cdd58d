"""Partners' webhook alerts and their pending deliveries, in the registry database.

    store = WebhookStore("sqlite:///data/passerelle.sqlite3")
    alert = store.create("rdv-app", filter_, "https://hooks.example/a", expires_at, now)
    store.enqueue(alert.id, event_id, payload, now)      # kept before it is sent
    for delivery in store.due(now, limit=50): ...         # then delivered(), or failed()

Synchronous and thread-safe (call it through ``asyncio.to_thread``). It keeps what an
alert needs and nothing more: the filter as stored by the resolvers (its point already
rounded), the callback URL, the expiry, the delivery state, and pending deliveries for
at most ``MAX_PENDING_AGE`` (``sweep``). Deleting an alert deletes its deliveries (by
hand too: SQLite does not enforce foreign keys unless asked).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlmodel import col, select

from sources.registry.database import RegistryDatabase
from sources.registry.tables import WebhookAlertRow, WebhookDeliveryRow

__all__ = [
    "ALERT_ID_PREFIX",
    "MAX_PENDING_AGE",
    "Delivery",
    "SweepResult",
    "WebhookState",
    "WebhookStore",
]

ALERT_ID_PREFIX = "wha_"
EVENT_ID_PREFIX = "msg_"
MAX_PENDING_AGE = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class WebhookState:
    """An alert as its partner and the operator see it (never its secret)."""

    id: str
    client_name: str
    filter: dict[str, Any]
    callback_url: str
    created_at: datetime
    expires_at: datetime
    paused_at: datetime | None
    failures: int
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_outcome: str | None
    delivered: int
    dropped: int
    pending: int

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One pending event of one alert, with where it goes."""

    id: str
    alert_id: str
    callback_url: str
    payload: bytes
    created_at: datetime
    attempts: int


@dataclass(frozen=True, slots=True)
class SweepResult:
    expired_alerts: int
    dropped_deliveries: int


def _utc(value: datetime) -> datetime:
    # Every instant is stored in UTC: SQLite keeps no offset, and compares text.
    return value.astimezone(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite gives back naive datetimes; every value stored here is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class WebhookStore:
    """Webhook alerts and deliveries over the registry database (upgraded when opened)."""

    def __init__(self, database_url: str) -> None:
        self._database = RegistryDatabase(database_url, "webhook registry")

    def close(self) -> None:
        self._database.close()

    def __enter__(self) -> WebhookStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- alerts ---------------------------------------------------------------------------

    def create(
        self,
        client_name: str,
        filter_: dict[str, Any],
        callback_url: str,
        expires_at: datetime,
        now: datetime,
    ) -> WebhookState:
        now = _utc(now)
        expires_at = _utc(expires_at)
        row = WebhookAlertRow(
            id=ALERT_ID_PREFIX + secrets.token_urlsafe(18),
            client_name=client_name,
            filter=filter_,
            callback_url=callback_url,
            created_at=now,
            expires_at=expires_at,
        )
        with self._database.reading() as session:
            session.add(row)
            session.commit()
            session.refresh(row)
            return self._state(row, 0)

    def count(self, client_name: str) -> int:
        with self._database.reading() as session:
            query = select(func.count()).where(col(WebhookAlertRow.client_name) == client_name)
            return int(session.exec(query).one())

    def alerts(self, client_name: str | None = None) -> list[WebhookState]:
        """Alerts (of one client, or all), oldest first, with their pending counts."""
        with self._database.reading() as session:
            query = select(WebhookAlertRow).order_by(
                col(WebhookAlertRow.created_at), col(WebhookAlertRow.id)
            )
            if client_name is not None:
                query = query.where(col(WebhookAlertRow.client_name) == client_name)
            rows = list(session.exec(query))
            pending = dict(
                session.exec(
                    select(WebhookDeliveryRow.alert_id, func.count()).group_by(
                        col(WebhookDeliveryRow.alert_id)
                    )
                ).all()
            )
            return [self._state(r, int(pending.get(r.id, 0))) for r in rows]

    def get(self, alert_id: str) -> WebhookState | None:
        found = [a for a in self.alerts() if a.id == alert_id]
        return found[0] if found else None

    def delete(self, alert_id: str, client_name: str | None = None) -> bool:
        """Delete an alert and its deliveries; ``client_name``: only if it is that
        client's. False when there is no such alert (of that client)."""
        with self._database.reading() as session:
            query = select(WebhookAlertRow).where(col(WebhookAlertRow.id) == alert_id)
            if client_name is not None:
                query = query.where(col(WebhookAlertRow.client_name) == client_name)
            row = session.exec(query).first()
            if row is None:
                return False
            session.execute(
                delete(WebhookDeliveryRow).where(col(WebhookDeliveryRow.alert_id) == alert_id)
            )
            session.delete(row)
            session.commit()
            return True

    def set_paused(self, alert_id: str, paused_at: datetime | None) -> bool:
        """Pause (``paused_at``) or resume (None: failures forgotten, retried at once)."""
        values: dict[str, Any] = {"paused_at": None if paused_at is None else _utc(paused_at)}
        if paused_at is None:
            values.update(failures=0, retry_at=None)
        with self._database.reading() as session:
            result = session.execute(
                update(WebhookAlertRow).where(col(WebhookAlertRow.id) == alert_id).values(**values)
            )
            session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def active(self, now: datetime) -> list[WebhookState]:
        """Alerts to watch: not paused, not expired."""
        now = _utc(now)
        return [a for a in self.alerts() if not a.paused and a.expires_at > now]

    # -- deliveries -----------------------------------------------------------------------

    def enqueue(self, alert_id: str, payload: bytes, now: datetime) -> str | None:
        """Keep an event for delivery; its id (``webhook-id``), or None when the alert is
        gone meanwhile."""
        now = _utc(now)
        event_id = EVENT_ID_PREFIX + secrets.token_urlsafe(18)
        with self._database.reading() as session:
            if session.get(WebhookAlertRow, alert_id) is None:
                return None
            session.add(
                WebhookDeliveryRow(
                    id=event_id, alert_id=alert_id, payload=payload.decode(), created_at=now
                )
            )
            session.commit()
        return event_id

    def due(self, now: datetime, limit: int, busy: frozenset[str] = frozenset()) -> list[Delivery]:
        """The oldest pending delivery of each alert not paused, not expired, not backing
        off and not in ``busy`` (one attempt in flight per alert), at most ``limit``."""
        now = _utc(now)
        with self._database.reading() as session:
            oldest = (
                select(
                    WebhookDeliveryRow.alert_id,
                    func.min(WebhookDeliveryRow.created_at).label("first"),
                )
                .group_by(col(WebhookDeliveryRow.alert_id))
                .subquery()
            )
            query = (
                select(WebhookDeliveryRow, WebhookAlertRow.callback_url)
                .join(WebhookAlertRow, col(WebhookAlertRow.id) == WebhookDeliveryRow.alert_id)
                .join(
                    oldest,
                    (oldest.c.alert_id == WebhookDeliveryRow.alert_id)
                    & (oldest.c.first == WebhookDeliveryRow.created_at),
                )
                .where(
                    col(WebhookAlertRow.paused_at).is_(None),
                    col(WebhookAlertRow.expires_at) > now,
                    or_(
                        col(WebhookAlertRow.retry_at).is_(None),
                        col(WebhookAlertRow.retry_at) <= now,
                    ),
                )
                .order_by(col(WebhookDeliveryRow.created_at))
            )
            found: list[Delivery] = []
            for row, url in session.exec(query):
                if row.alert_id in busy or any(d.alert_id == row.alert_id for d in found):
                    continue
                found.append(
                    Delivery(
                        row.id,
                        row.alert_id,
                        url,
                        row.payload.encode(),
                        _aware(row.created_at) or now,
                        row.attempts,
                    )
                )
                if len(found) >= limit:
                    break
            return found

    def delivered(self, delivery: Delivery, now: datetime, outcome: str) -> None:
        now = _utc(now)
        with self._database.reading() as session:
            session.execute(
                delete(WebhookDeliveryRow).where(col(WebhookDeliveryRow.id) == delivery.id)
            )
            session.execute(
                update(WebhookAlertRow)
                .where(col(WebhookAlertRow.id) == delivery.alert_id)
                .values(
                    failures=0,
                    retry_at=None,
                    last_attempt_at=now,
                    last_success_at=now,
                    last_outcome=outcome,
                    delivered=col(WebhookAlertRow.delivered) + 1,
                )
            )
            session.commit()

    def failed(
        self, delivery: Delivery, now: datetime, outcome: str, retry_at: datetime, pause_after: int
    ) -> bool:
        """Record a failed attempt: the alert backs off until ``retry_at``, and is paused
        once it has failed ``pause_after`` times in a row. True when it was paused."""
        now = _utc(now)
        retry_at = _utc(retry_at)
        with self._database.reading() as session:
            session.execute(
                update(WebhookDeliveryRow)
                .where(col(WebhookDeliveryRow.id) == delivery.id)
                .values(attempts=col(WebhookDeliveryRow.attempts) + 1)
            )
            row = session.get(WebhookAlertRow, delivery.alert_id)
            if row is None:
                session.commit()
                return False
            row.failures += 1
            row.retry_at = retry_at
            row.last_attempt_at = now
            row.last_outcome = outcome[:200]
            paused = row.failures >= pause_after and row.paused_at is None
            if paused:
                row.paused_at = now
            session.add(row)
            session.commit()
            return paused

    def sweep(self, now: datetime) -> SweepResult:
        """Delete expired alerts (with their deliveries), and drop deliveries older than
        ``MAX_PENDING_AGE``, counted on their alert."""
        now = _utc(now)
        with self._database.reading() as session:
            expired = list(
                session.exec(
                    select(WebhookAlertRow.id).where(col(WebhookAlertRow.expires_at) <= now)
                )
            )
            if expired:
                session.execute(
                    delete(WebhookDeliveryRow).where(col(WebhookDeliveryRow.alert_id).in_(expired))
                )
                session.execute(delete(WebhookAlertRow).where(col(WebhookAlertRow.id).in_(expired)))
            cutoff = now - MAX_PENDING_AGE
            old = dict(
                session.exec(
                    select(WebhookDeliveryRow.alert_id, func.count())
                    .where(col(WebhookDeliveryRow.created_at) < cutoff)
                    .group_by(col(WebhookDeliveryRow.alert_id))
                ).all()
            )
            for alert_id, count in old.items():
                session.execute(
                    update(WebhookAlertRow)
                    .where(col(WebhookAlertRow.id) == alert_id)
                    .values(dropped=col(WebhookAlertRow.dropped) + count)
                )
            if old:
                session.execute(
                    delete(WebhookDeliveryRow).where(col(WebhookDeliveryRow.created_at) < cutoff)
                )
            session.commit()
            return SweepResult(len(expired), sum(int(c) for c in old.values()))

    @staticmethod
    def _state(row: WebhookAlertRow, pending: int) -> WebhookState:
        return WebhookState(
            id=row.id,
            client_name=row.client_name,
            filter=dict(row.filter),
            callback_url=row.callback_url,
            created_at=_aware(row.created_at) or row.created_at,
            expires_at=_aware(row.expires_at) or row.expires_at,
            paused_at=_aware(row.paused_at),
            failures=row.failures,
            last_attempt_at=_aware(row.last_attempt_at),
            last_success_at=_aware(row.last_success_at),
            last_outcome=row.last_outcome,
            delivered=row.delivered,
            dropped=row.dropped,
            pending=pending,
        )
