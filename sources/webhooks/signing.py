"""Signing deliveries as Standard Webhooks has it (https://www.standardwebhooks.com/):
``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``:
``v1,`` then the base64 HMAC-SHA256 of ``id.timestamp.body`` under the alert's secret.

The secret is never stored: it is HMAC-SHA256(server key, alert id), the server key
coming from ``PASSERELLE_WEBHOOK_KEY``, so a copy of the database cannot sign. It is
shown to the partner once, at creation, as ``whsec_`` and its base64.

We sign with the standard library (a dozen lines) rather than the ``standardwebhooks``
package: the gateway gains no dependency, and the tests verify every delivery with that
package, an implementation other than ours.

    signer = WebhookSigner(b"a server key of at least 32 bytes....")
    headers = signer.headers("wha_x", "msg_y", 1765180800, b'{"type":"slot.alert"}')
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping

from sources.errors import ConfigError

__all__ = [
    "DEVELOPMENT_KEY",
    "MIN_KEY_LENGTH",
    "SECRET_PREFIX",
    "WEBHOOK_KEY_ENV",
    "WebhookSigner",
    "server_key",
]

logger = logging.getLogger("passerelle.webhooks")

WEBHOOK_KEY_ENV = "PASSERELLE_WEBHOOK_KEY"
MIN_KEY_LENGTH = 32
SECRET_PREFIX = "whsec_"
# Development mode only: a known key, so secrets survive restarts on a laptop.
DEVELOPMENT_KEY = "passerelle-development-webhook-key-not-secret"


def server_key(environ: Mapping[str, str], *, production: bool) -> bytes | None:
    """The key secrets are derived from: ``PASSERELLE_WEBHOOK_KEY``; in development
    without it, ``DEVELOPMENT_KEY``; in production without it, None (webhooks off).
    ``ConfigError`` for a key too short."""
    value = environ.get(WEBHOOK_KEY_ENV)
    if value:
        if len(value) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"{WEBHOOK_KEY_ENV} must be at least {MIN_KEY_LENGTH} characters "
                "(e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value.encode()
    if production:
        return None
    return DEVELOPMENT_KEY.encode()


class WebhookSigner:
    """Derives each alert's secret from the server key, and signs its deliveries."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def secret(self, alert_id: str) -> bytes:
        return hmac.new(
            self._key, b"passerelle-webhook:" + alert_id.encode(), hashlib.sha256
        ).digest()

    def secret_text(self, alert_id: str) -> str:
        """The secret as Standard Webhooks libraries take it: ``whsec_<base64>``."""
        return SECRET_PREFIX + base64.b64encode(self.secret(alert_id)).decode()

    def signature(self, alert_id: str, event_id: str, timestamp: int, body: bytes) -> str:
        signed = f"{event_id}.{timestamp}.".encode() + body
        digest = hmac.new(self.secret(alert_id), signed, hashlib.sha256).digest()
        return "v1," + base64.b64encode(digest).decode()

    def headers(self, alert_id: str, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        return {
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": self.signature(alert_id, event_id, timestamp, body),
            "content-type": "application/json",
        }
