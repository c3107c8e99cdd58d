"""Access logs without query strings: :class:`WithoutQueryStrings`.

A GET's query string holds its variables, and a slot search's variables are where
someone is (``near: {latitude, longitude}``); a subscription's filter is a
person's whereabouts for as long as it is open. uvicorn writes the whole target of
each request to its access log (``uvicorn.access``) and of each WebSocket handshake
to its error log (``uvicorn.error``): this filter cuts the query string off every
such path before the line is written (``/graphql?…``), whatever the log level. A
hand-off's path names the slot a patient is about to book (``/go/<slot id>``, its
clinic and time): the id is cut off too (``/go/…``).

    install()  # once; create_app does it, for whatever server runs the app
"""

from __future__ import annotations

import logging

__all__ = ["LOGGERS", "WithoutQueryStrings", "install", "route_of"]

# uvicorn's loggers that write request targets: HTTP requests, WebSocket handshakes.
LOGGERS = ("uvicorn.access", "uvicorn.error")


class WithoutQueryStrings(logging.Filter):
    """Replaces the query string of any path among a record's arguments by ``?…``."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(_cut(a) is not a for a in args):
            record.args = tuple(_cut(a) for a in args)
        return True


def _cut(value: object) -> object:
    """A path without its query string (``/graphql?…``) nor a hand-off's slot id
    (``/go/…``); anything else as it is."""
    if not isinstance(value, str) or not value.startswith("/"):
        return value
    if value.startswith("/go/"):
        return "/go/…"
    if "?" in value:
        return value.split("?", 1)[0] + "?…"
    return value


def route_of(path: str) -> str:
    """A request's path as logs may show it: no query string, no hand-off's slot id."""
    cut = _cut(path.split("?", 1)[0])
    return cut if isinstance(cut, str) else path


def install() -> None:
    """Put the filter on uvicorn's loggers (once: installing again changes nothing)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, WithoutQueryStrings) for f in logger.filters):
            logger.addFilter(WithoutQueryStrings())
