"""Subscriptions at the edge: how they travel, and what they may do.

``websocket`` (``GatewayTransportWS``: ``graphql-transport-ws`` with the gateway's
keys, steps, caps, codes, pings and goodbye), ``multipart`` (``MultipartStream``:
Apollo's multipart HTTP subscriptions as a response held in the hub), ``limits``
(``SubscriptionLimits``: how many may be open, per connection, key and IP) and
``hub`` (``Subscriptions``: the caps and the open transports, told when the server
goes away). What each transport does, the caps and the close codes:
``edge/subscriptions/README.md``.

May import ``edge.operation``, ``edge.exchange``, ``edge.services``, ``edge.pipeline``
and ``schema.error_codes``; never the view (``edge.graphql_view``), which uses it.
"""

from edge.subscriptions.hub import Subscriptions, going_away
from edge.subscriptions.limits import Lease, SubscriptionLimits

__all__ = ["Lease", "SubscriptionLimits", "Subscriptions", "going_away"]
