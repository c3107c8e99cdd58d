"""``python app.py webhooks list|pause|resume|delete``: any partner's webhook alerts,
for the operator; and the serving flags of webhooks (``--webhook-allow-host``,
``--webhook-ca-file``). Light at load time, as the rest of the parser."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.cli.parser import PasserelleParser

__all__ = ["add_webhook_arguments", "add_webhooks_commands", "run_webhooks_command"]


def add_webhook_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--webhook-allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="let webhook callbacks reach this host even on a private or loopback address "
        "(https is still required); repeatable",
    )
    parser.add_argument(
        "--webhook-ca-file",
        metavar="FILE",
        help="a PEM file of extra certificate authorities to trust for webhook callbacks",
    )


def add_webhooks_commands(
    commands: argparse._SubParsersAction[PasserelleParser], shared: PasserelleParser
) -> None:
    """The grammar of ``webhooks``."""
    webhooks = commands.add_parser("webhooks", help="list, pause, resume or delete webhook alerts")
    actions = webhooks.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list", help="every alert (never its URL's query)", parents=[shared]
    )
    listing.add_argument("--client", metavar="NAME", help="only this client's alerts")
    for name, text in (
        ("pause", "stop watching and delivering an alert (kept until it expires)"),
        ("resume", "watch and deliver a paused alert again, its failures forgotten"),
        ("delete", "delete an alert and its pending deliveries"),
    ):
        actions.add_parser(name, help=text, parents=[shared]).add_argument("id")


def run_webhooks_command(args: argparse.Namespace, database_url: str) -> int:
    """Run one ``webhooks`` action; 0 when done, 1 when the alert does not exist."""
    import sys
    from datetime import UTC, datetime

    from sources.webhooks import WebhookStore

    with WebhookStore(database_url) as store:
        if args.action == "list":
            rows = store.alerts(args.client)
            if not rows:
                print("no webhook alerts")
            for a in rows:
                state = f"paused {a.paused_at:%Y-%m-%d %H:%M}Z" if a.paused_at else "active"
                last = a.last_outcome or "never attempted"
                print(
                    f"{a.id}\t{a.client_name}\t{state}\texpires {a.expires_at:%Y-%m-%d %H:%M}Z"
                    f"\tdelivered {a.delivered}, pending {a.pending}, dropped {a.dropped}"
                    f"\tfailures {a.failures}, last {last}"
                )
            return 0
        if args.action == "delete":
            done = store.delete(args.id)
        else:
            done = store.set_paused(args.id, datetime.now(UTC) if args.action == "pause" else None)
        if not done:
            print(f"passerelle: no webhook alert {args.id!r}", file=sys.stderr)
            return 1
        past = {"pause": "paused", "resume": "resumed", "delete": "deleted"}[args.action]
        print(f"{args.id} {past}")
        return 0
