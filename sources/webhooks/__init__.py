"""Webhook alerts' infrastructure: where a callback may be (``callbacks``), how a
delivery is signed (``signing``), and the worker that delivers (``delivery``); the
alerts and deliveries themselves are kept by ``sources.registry.webhooks``. What is
kept, where and how long: ``README.md``.

Knows nothing of GraphQL: a delivery's payload is bytes made above.
"""

from sources.registry.webhooks import Delivery, WebhookState, WebhookStore
from sources.webhooks.callbacks import (
    MAX_URL_LENGTH,
    CallbackRefused,
    GuardedResolver,
    check_callback_url,
    refused_address,
)
from sources.webhooks.delivery import DeliveryPolicy, DeliveryWorker, webhook_session
from sources.webhooks.signing import (
    SECRET_PREFIX,
    WEBHOOK_KEY_ENV,
    WebhookSigner,
    server_key,
)

__all__ = [
    "MAX_URL_LENGTH",
    "SECRET_PREFIX",
    "WEBHOOK_KEY_ENV",
    "CallbackRefused",
    "Delivery",
    "DeliveryPolicy",
    "DeliveryWorker",
    "GuardedResolver",
    "WebhookSigner",
    "WebhookState",
    "WebhookStore",
    "check_callback_url",
    "refused_address",
    "server_key",
    "webhook_session",
]
