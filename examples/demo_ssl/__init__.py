"""The demo SMART Scheduling Links publisher: the demo world as static NDJSON files.

``server`` serves a publication over HTTP and holds the command line
(``python -m examples.demo_ssl``), ``publisher`` keeps one up to date as slots are booked
and added, ``feed`` writes the NDJSON files and ``manifest`` the ``$bulk-publish``
manifest that lists them.

    app = build_app(Publisher(World(scale=0.01), directory))
"""

from __future__ import annotations

from examples.demo_ssl.feed import MALFORMED_KINDS, write_feed
from examples.demo_ssl.manifest import Feed, FeedFile, SlotCounts
from examples.demo_ssl.publisher import Publication, Publisher
from examples.demo_ssl.server import DEFAULT_MAX_AGE_S, build_app, main

__all__ = [
    "DEFAULT_MAX_AGE_S",
    "MALFORMED_KINDS",
    "Feed",
    "FeedFile",
    "Publication",
    "Publisher",
    "SlotCounts",
    "build_app",
    "main",
    "write_feed",
]
