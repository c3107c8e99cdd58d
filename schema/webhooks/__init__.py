"""Partners' webhook alerts in the schema: their mutations and query field
(``fields``), and the body of each delivery (``payload``)."""

from schema.webhooks.fields import Mutation, SlotAlertWebhook, WebhookQuery
from schema.webhooks.payload import PAYLOAD_TYPE, alert_payload

__all__ = ["PAYLOAD_TYPE", "Mutation", "SlotAlertWebhook", "WebhookQuery", "alert_payload"]
