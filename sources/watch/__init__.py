"""Slot alerts: what changes at the sources, for the subscriptions that watch it.

``SlotWatch`` is the app's one watch; ``WatchFilter`` what one subscriber watches,
``Alert`` what it hears.

May import the contract, ``sources.pool`` and ``sources.search``; never an adapter's
package, nor ``registry``.
"""

from sources.watch.member import Alert, WatchFilter
from sources.watch.watch import SlotWatch

__all__ = ["Alert", "SlotWatch", "WatchFilter"]
