"""The command line's grammar: every flag and command of ``python app.py``.

Only argparse and light validators: ``--help`` and a mistyped flag must answer in
well under 0.3 s, so nothing here may import the stores, the schema or the server.
A mistake is told in one line, ``passerelle: WHAT: WHY``, and exits 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from edge.cli.arg_types import (
    churn,
    network,
    port,
    positive_int,
    rate,
    requests_per_second,
    scale,
    seconds,
)
from edge.settings import (
    CACHE_CHOICES,
    DEFAULT_DATABASE_URL,
    DEFAULT_MAX_COST,
    ENVIRONMENTS,
    SUBSCRIPTIONS_PER_CONNECTION,
    SUBSCRIPTIONS_PER_IP,
    SUBSCRIPTIONS_PER_KEY,
)

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_DEMO_CHURN",
    "DEMO_DATABASE_URL",
    "PasserelleParser",
    "UsageError",
    "build_parser",
]

DEMO_DATABASE_URL = "sqlite:///data/demo.sqlite3"
# A copy of examples.churn.DEFAULT_RATE (tests/edge/cli/test_parser.py keeps them equal):
# this module may not import the demo.
DEFAULT_DEMO_CHURN = 6.0


class UsageError(Exception):
    """A command line that parsed but cannot be run as given (told as one line, exit 2)."""


class PasserelleParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, not a usage block: given
    ``python app.py --port http``, it says ``passerelle: --port: not a port number:
    'http'`` on stderr and exits 2."""

    def error(self, message: str) -> NoReturn:
        # argparse says "argument --port: ..."; the flag alone reads better.
        message = " ".join(message.removeprefix("argument ").split())
        self.exit(2, f"passerelle: {message}\n")


def build_parser() -> PasserelleParser:
    """Every flag and command; the subparsers are ``PasserelleParser`` s too."""
    parser = PasserelleParser(
        prog="python app.py",
        description="Passerelle: every free family-doctor slot, whichever booking system.",
    )
    _add_serve_arguments(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Accept --database-url after the action too (argparse.SUPPRESS keeps the global one).
    shared = PasserelleParser(add_help=False)
    shared.add_argument("--database-url", default=argparse.SUPPRESS, help="registry database")
    _add_sources_commands(commands, shared)
    _add_clients_commands(commands, shared)
    # Grammars kept beside their commands (this module stays under 400 lines).
    from edge.cli.documents import add_documents_commands
    from edge.cli.webhooks import add_webhook_arguments, add_webhooks_commands

    add_documents_commands(commands, shared)
    add_webhooks_commands(commands, shared)
    add_webhook_arguments(parser)
    return parser


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=port, default=8000, help="port to listen on (8000)")
    parser.add_argument("--config", type=Path, help="TOML file of [[sources]], watched for changes")
    parser.add_argument(
        "--no-demo", action="store_true", help="do not start the demo booking systems"
    )
    parser.add_argument(
        "--scale",
        type=scale,
        default=1.0,
        help="size of the demo world as a fraction of Quebec (1.0; 0.01 gives ~13 clinics)",
    )
    parser.add_argument(
        "--demo-base-port",
        type=port,
        default=8101,
        help="first port of the demo systems: demo-fhir, then demo-rest, demo-ssl (8101)",
    )
    parser.add_argument(
        "--demo-faults",
        action="append",
        default=[],
        metavar="SOURCE=SPEC",
        help="make a demo system misbehave, e.g. demo-rest=latency:50ms,errors:0.2 "
        "(repeatable; keys: latency:D jitter:D errors:P malformed:P ratelimit:R hang)",
    )
    parser.add_argument(
        "--demo-churn",
        type=churn,
        default=DEFAULT_DEMO_CHURN,
        metavar="RATE",
        help="slots each demo system opens and takes a minute, alternately, so that "
        f"subscriptions hear of changes ({DEFAULT_DEMO_CHURN:g}; 0: none)",
    )
    parser.add_argument(
        "--cache",
        choices=CACHE_CHOICES,
        help="where source answers are cached across requests: memory (one process), "
        "redis (shared by every instance) or off (default: $PASSERELLE_CACHE, else redis "
        "when $PASSERELLE_REDIS_URL is set, else memory)",
    )
    parser.add_argument(
        "--env",
        choices=ENVIRONMENTS,
        help="development (GraphiQL, introspection) or production (neither, and no field "
        "suggestions) (default: $PASSERELLE_ENV, else development)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help="a browser origin allowed to call the API, e.g. https://rendezvous.example "
        "(repeatable; default: $PASSERELLE_CORS_ORIGINS, comma-separated; none)",
    )
    parser.add_argument(
        "--anonymous-rate",
        type=rate,
        help="requests per second (burst twice that) of each client IP without a key "
        "(default: 20 in production, no limit in development; 0: no limit)",
    )
    parser.add_argument(
        "--drain-s",
        type=seconds,
        default=0.0,
        help="on SIGTERM, seconds /ready answers 503 before the listener closes, then "
        "up to 5 s for a proxy's kept-alive connections to close (0: neither)",
    )
    parser.add_argument(
        "--metrics-port", type=port, help="serve /metrics there only, open (not on --port)"
    )
    parser.add_argument(
        "--metrics-host", default="127.0.0.1", help="--metrics-port's address (127.0.0.1)"
    )
    parser.add_argument(
        "--watch-lease-s",
        type=lambda text: seconds(text, 1, 600),
        default=10.0,
        help="with Redis, seconds of the lease under which one instance watches alerts (10)",
    )
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        type=network,
        metavar="CIDR",
        help="a proxy whose X-Forwarded-For gives the client IP (repeatable; none by default)",
    )
    for name, default, what in (
        ("connection", SUBSCRIPTIONS_PER_CONNECTION, "on one WebSocket connection"),
        ("ip", SUBSCRIPTIONS_PER_IP, "of one client IP without a key"),
        ("key", SUBSCRIPTIONS_PER_KEY, "of one partner key, unless its own --max-subscriptions"),
    ):
        parser.add_argument(
            f"--subscriptions-per-{name}",
            type=positive_int,
            default=default,
            metavar="N",
            help=f"most subscriptions open at once {what} (SUBSCRIPTION_LIMIT; {default})",
        )
    parser.add_argument(
        "--ws-compression",
        action="store_true",
        help="accept WebSocket permessage-deflate (off: it costs CPU per connection)",
    )
    parser.add_argument(
        "--max-cost",
        type=positive_int,
        default=DEFAULT_MAX_COST,
        help=f"refuse operations that would cost more (COST_LIMIT_EXCEEDED; {DEFAULT_MAX_COST})",
    )
    parser.add_argument(
        "--measure-cost",
        action="store_true",
        help="do not refuse costly operations: report extensions.cost = {requested, limit}",
    )
    parser.add_argument(
        "--batching",
        action="store_true",
        help="accept a JSON array of at most 10 operations in one request (off by default)",
    )
    for flag, meaning in (
        ("--no-response-cache", "execute each persisted operation, never reuse its cached answer"),
        ("--no-shared-operations", "execute each query alone, even while an identical one runs"),
        ("--no-compiled-plan", "complete every field through graphql-core, not by compiled plans"),
    ):
        parser.add_argument(flag, action="store_true", help=meaning)
    parser.add_argument(
        "--redis-url",
        help="Redis for the shared cache, e.g. redis://127.0.0.1:6379/0 "
        "(default: $PASSERELLE_REDIS_URL)",
    )
    parser.add_argument(
        "--database-url",
        help="registry database (default: $PASSERELLE_DATABASE_URL, else "
        f"{DEFAULT_DATABASE_URL}; the demo uses {DEMO_DATABASE_URL})",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )


def _add_sources_commands(
    commands: argparse._SubParsersAction[PasserelleParser], shared: PasserelleParser
) -> None:
    sources = commands.add_parser("sources", help="manage the registry of booking sources")
    actions = sources.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="register a booking source", parents=[shared])
    add.add_argument("--id", required=True)
    add.add_argument(
        "--protocol", required=True, help="FHIR_R4, SMART_SCHEDULING_LINKS or REST_JSON"
    )
    add.add_argument("--url", required=True)
    add.add_argument("--name")
    add.add_argument("--timeout-s", default=2.0, help="per-call timeout in seconds (2)")
    add.add_argument("--credentials-env", help="environment variable holding the API key/token")
    add.add_argument("--disabled", action="store_true", help="register it switched off")
    actions.add_parser("list", help="list the registered sources", parents=[shared])
    actions.add_parser(
        "probe",
        help="ask a source now what it can do, and print what was learnt and its problems",
        parents=[shared],
    ).add_argument("id")
    check = actions.add_parser(
        "check",
        help="check a booking system as the gateway would use it, registered (ID) or not "
        "(--protocol and --url); exit 0 when all it publishes can be served, 1 when not",
        parents=[shared],
    )
    check.add_argument("id", nargs="?", help="a registered source's id")
    check.add_argument("--protocol", help="FHIR_R4, SMART_SCHEDULING_LINKS or REST_JSON")
    check.add_argument("--url", help="the system's base URL (a feed: its $bulk-publish)")
    check.add_argument("--credentials-env", help="environment variable holding the API key/token")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    for name, text in (
        ("disable", "switch a source off"),
        ("enable", "switch a source on"),
        ("remove", "delete a source"),
    ):
        actions.add_parser(name, help=text, parents=[shared]).add_argument("id")


def _add_clients_commands(
    commands: argparse._SubParsersAction[PasserelleParser], shared: PasserelleParser
) -> None:
    clients = commands.add_parser("clients", help="manage partner clients and their API keys")
    actions = clients.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create", help="create a client and print its API key (shown once)", parents=[shared]
    )
    update = actions.add_parser(
        "update", help="change a client's options (its key stays)", parents=[shared]
    )
    flags: tuple[tuple[argparse.ArgumentParser, type[argparse.Action] | str], ...] = (
        (create, "store_true"),
        (update, argparse.BooleanOptionalAction),
    )
    for command, flag in flags:
        command.add_argument("name")
        command.add_argument(
            "--persisted-only",
            action=flag,
            help="may run only the documents registered for it (documents push)",
        )
        command.add_argument(
            "--log-only",
            action=flag,
            help="persisted-only in report mode: serve other operations and log their hash "
            "(gradual rollout; implies --persisted-only)",
        )
        command.add_argument(
            "--allow-introspection",
            action=flag,
            help="may introspect the schema even in production",
        )
        command.add_argument(
            "--operator",
            action=flag,
            help="may see what is for operators only (problem samples, upstream "
            "diagnostics) even in production",
        )
        command.add_argument(
            "--rate-limit",
            type=requests_per_second,
            metavar="RPS",
            help="requests per second allowed to this client",
        )
        command.add_argument(
            "--max-subscriptions",
            type=positive_int,
            metavar="N",
            help="subscriptions this client may have open at once (default: the gateway's "
            "--subscriptions-per-key)",
        )
    update.add_argument("--no-rate-limit", action="store_true", help="remove its rate limit")
    update.add_argument(
        "--no-max-subscriptions",
        action="store_true",
        help="back to the gateway's --subscriptions-per-key",
    )
    actions.add_parser("list", help="list the clients (never their keys)", parents=[shared])
    actions.add_parser(
        "revoke", help="revoke a client's key for good", parents=[shared]
    ).add_argument("name")
