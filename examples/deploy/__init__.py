"""Passerelle behind nginx: N identical instances sharing PostgreSQL and Redis.

``nginx/passerelle.conf`` and ``systemd/`` are what an operator installs (README.md
explains each line); ``render`` rewrites the nginx site for other ports, and
``cluster`` runs instances and an unprivileged nginx for the tests and benchmarks.
"""

from __future__ import annotations

from examples.deploy.cluster import Cluster, Instance, Nginx, nginx_problem
from examples.deploy.render import render_main, render_site, write_config

__all__ = [
    "Cluster",
    "Instance",
    "Nginx",
    "nginx_problem",
    "render_main",
    "render_site",
    "write_config",
]
