"""The command line, the gateway's other face: ``python app.py [COMMAND] ...``.

- ``parser``: every flag and command, with light validators (argparse only), and
  ``PasserelleParser``, whose mistakes are one line and exit 2;
- one module per command: ``sources``, ``clients``, ``documents`` (the registries)
  and ``serve`` (the gateway, and the demo booking systems);
- ``dispatch``: :func:`main`, which reads the command line and runs the command.

May import ``edge.settings`` and the standard library at load time, and anything
below it (``edge``, ``schema``, ``sources``, uvicorn, the demo in ``examples``) only
inside the function that runs a command: ``--help`` must answer in 0.3 s. Never
imports ``app``: ``app.main`` passes ``create_app`` in.
"""

from __future__ import annotations

from edge.cli.dispatch import main

__all__ = ["main"]
