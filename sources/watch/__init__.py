"""Slot alerts: what changes at the sources, for the subscriptions that watch it.

``SlotWatch`` is the app's one watch (``watch``); ``WatchFilter`` what one subscriber
watches and ``WatchKey`` what its group watches (``keys``); ``Alert`` what it hears
(``member``); ``GroupChange`` what a group sees change, and its codec (``changes``);
``Group`` reads a group's search (``group``) and ``Pace`` paces the calls to a live
source (``pace``). What is kept, where and for how long: ``README.md``.

May import the contract, ``sources.pool`` and ``sources.search``; never an adapter's
package, nor ``registry``.
"""

from sources.watch.changes import (
    GoneSlot,
    GroupChange,
    SourceFailure,
    decode_change,
    decode_key,
    encode_change,
    encode_key,
)
from sources.watch.keys import WatchFilter, WatchKey
from sources.watch.member import Alert
from sources.watch.pace import Pace
from sources.watch.watch import MAX_SLOTS, SlotWatch

__all__ = [
    "MAX_SLOTS",
    "Alert",
    "GoneSlot",
    "GroupChange",
    "Pace",
    "SlotWatch",
    "SourceFailure",
    "WatchFilter",
    "WatchKey",
    "decode_change",
    "decode_key",
    "encode_change",
    "encode_key",
]
