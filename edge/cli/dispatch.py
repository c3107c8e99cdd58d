"""Reads the command line and runs its command: :func:`main`.

Each command's module imports what it needs (the stores, the schema, the server,
the demo) inside the function that runs it, so that this module and everything it
imports at load time stays light: ``python app.py --help`` answers in well under
0.3 s.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from edge.cli.clients import run_clients_command
from edge.cli.documents import run_documents_command
from edge.cli.parser import DEMO_DATABASE_URL, UsageError, build_parser
from edge.cli.serve import AppFactory, serve
from edge.cli.sources import run_sources_command
from edge.cli.webhooks import run_webhooks_command
from edge.settings import DEFAULT_DATABASE_URL
from sources.errors import ConfigError

__all__ = ["main"]


def main(argv: Sequence[str] | None, *, create_app: AppFactory) -> int:
    """Run ``python app.py ARGV``: a registry command, or else serve the app that
    ``create_app`` builds (``app.main`` passes ``app.create_app``). Returns the exit
    status: 0, 1 when a runtime check fails, 2 for input to fix (told in one line)::

        sys.exit(main(["sources", "list"], create_app=create_app))
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_level != "debug":
        # Alembic lists its plugins at INFO when it loads, which is now after logging is
        # set up (it used to load with app.py, before): keep that to --log-level debug.
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    serving_demo = args.command is None and not args.no_demo
    database_url = args.database_url or (
        os.environ.get("PASSERELLE_DEMO_DATABASE_URL") or DEMO_DATABASE_URL
        if serving_demo
        else os.environ.get("PASSERELLE_DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    try:
        if args.command == "sources":
            return run_sources_command(args, database_url)
        if args.command == "clients":
            return run_clients_command(args, database_url)
        if args.command == "documents":
            return run_documents_command(args, database_url)
        if args.command == "webhooks":
            return run_webhooks_command(args, database_url)
        return serve(args, database_url, create_app)
    except UsageError as exc:
        parser.error(str(exc))
    except ConfigError as exc:
        print(f"passerelle: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"passerelle: {exc}", file=sys.stderr)
        return 1
