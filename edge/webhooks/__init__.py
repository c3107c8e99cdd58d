"""Partners' webhook alerts in the running gateway: ``WebhookService`` (the store, the
delivery worker, the feeds of each alert), started by the app's lifespan. How they
work, and what they keep: ``README.md``."""

from edge.webhooks.feeds import WebhookFeeds
from edge.webhooks.service import WebhookService

__all__ = ["WebhookFeeds", "WebhookService"]
