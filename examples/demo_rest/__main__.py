"""``python -m examples.demo_rest``: the command line of ``examples.demo_rest.server``."""

from __future__ import annotations

from examples.demo_rest.server import main

main()
