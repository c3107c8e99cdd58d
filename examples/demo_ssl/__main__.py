"""``python -m examples.demo_ssl``: the command line of ``examples.demo_ssl.server``."""

from __future__ import annotations

from examples.demo_ssl.server import main

main()
