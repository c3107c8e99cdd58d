"""Gateway instances and an nginx in front of them, as processes on loopback ports.

What ``tests/examples/test_deploy.py`` and ``benchmarks/two_instances.py`` start: each
:class:`Instance` is ``python app.py --no-demo`` as ``systemd/passerelle@.service``
runs it (``--trusted-proxy 127.0.0.1``, ``--drain-s``, Redis for every shared store);
:class:`Nginx` is Debian's nginx, unprivileged, in the foreground, with the shipped
site file rendered for these ports (``render.py``)::

    with Cluster(tmp, database_url=db, redis_url=redis, ports=[p1, p2], listen=p3) as c:
        c.instances[0].terminate()            # SIGTERM: drains, then exits 0
        c.url                                 # http://127.0.0.1:p3/graphql
"""

from __future__ import annotations

import os
import pwd
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from examples.deploy.render import NGINX, write_config

__all__ = ["Cluster", "Instance", "Nginx", "nginx_problem"]

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
_LOGGED = re.compile(r" rid=(?P<rid>\S+) upstream=(?P<upstreams>.*?) upstream_status=")


def nginx_problem() -> str | None:
    """Why nginx cannot be run here, or None."""
    if not os.access(NGINX, os.X_OK):
        return f"{NGINX} is missing: install Debian's nginx (apt-get install nginx)"
    return None


def _status(url: str, timeout_s: float = 1.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


@dataclass
class Instance:
    """One gateway process: ``python app.py --no-demo`` on ``127.0.0.1:port``."""

    port: int
    database_url: str
    redis_url: str
    log: Path
    drain_s: float = 2.0
    extra: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            str(APP),
            "--no-demo",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--trusted-proxy", "127.0.0.1",
            "--drain-s", f"{self.drain_s:g}",
            "--database-url", self.database_url,
            "--cache", "redis",
            "--redis-url", self.redis_url,
            "--log-level", "warning",
            *self.extra,
        ]  # fmt: skip

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv(),
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout_s: float = 60.0) -> float:
        """Seconds until ``/ready`` answers 200 (its registry read, Redis answering)."""
        started = time.monotonic()
        while _status(f"{self.base}/ready") != 200:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"instance on port {self.port} exited ({self.process.returncode}); "
                    f"its output is in {self.log}"
                )
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"instance on port {self.port} not ready in {timeout_s:g} s")
            time.sleep(0.1)
        return time.monotonic() - started

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def wait(self, timeout_s: float = 30.0) -> int | None:
        """The exit status (None while running)."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.terminate()
        if self.wait(self.drain_s + 20) is None:
            self.kill()
            self.process.wait()


@dataclass
class Nginx:
    """Debian's nginx in the foreground, under ``prefix``, in front of ``instances``."""

    prefix: Path
    listen: int
    instances: Sequence[int]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen}/graphql"

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    def configure(self) -> Path:
        conf = write_config(self.prefix, listen=self.listen, instances=self.instances)
        if os.geteuid() == 0:
            # As root, nginx's workers would become "nobody", who cannot enter a test's
            # private directories: keep them as this user (never in a real deployment).
            user = pwd.getpwuid(os.geteuid()).pw_name
            text = conf.read_text(encoding="utf-8")
            conf.write_text(text.replace("worker_processes", f"user {user};\nworker_processes", 1))
        return conf

    def _command(self, conf: Path, *more: str) -> list[str]:
        return [
            NGINX,
            "-p",
            str(self.prefix),
            "-e",
            str(self.prefix / "error.log"),
            "-c",
            str(conf),
            *more,
        ]

    def check(self) -> subprocess.CompletedProcess[str]:
        """``nginx -t`` on the rendered configuration."""
        conf = self.configure()
        return subprocess.run(
            self._command(conf, "-t"), capture_output=True, text=True, check=False
        )

    def start(self, timeout_s: float = 10.0) -> None:
        checked = self.check()
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t refused the configuration: {checked.stderr.strip()}")
        conf = self.prefix / "nginx.conf"
        with (self.prefix / "nginx.out").open("ab") as out:
            self.process = subprocess.Popen(
                self._command(conf, "-g", "daemon off;"),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while _status(f"http://127.0.0.1:{self.listen}/health") is None:
            if self.process.poll() is not None:
                error = (self.prefix / "error.log").read_text(errors="replace")
                raise RuntimeError(f"nginx exited ({self.process.returncode}): {error[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not listen on {self.listen} in {timeout_s:g} s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: finish the open requests
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def upstreams(self) -> dict[str, list[str]]:
        """From the access log: each request id's ``upstream_addr`` list, in order."""
        found: dict[str, list[str]] = {}
        if not self.access_log.exists():
            return found
        for line in self.access_log.read_text(errors="replace").splitlines():
            # ... rid=ID upstream=A, B upstream_status=502, 200 ... (log_format passerelle)
            match = _LOGGED.search(line)
            if match:
                found[match["rid"]] = [a.strip() for a in match["upstreams"].split(",")]
        return found


@dataclass
class Cluster:
    """Instances on ``ports`` and nginx on ``listen``, started together, stopped together."""

    prefix: Path
    database_url: str
    redis_url: str
    ports: Sequence[int]
    listen: int
    drain_s: float = 2.0
    extra: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    instances: list[Instance] = field(default_factory=list)
    nginx: Nginx | None = None

    @property
    def url(self) -> str:
        assert self.nginx is not None
        return self.nginx.url

    def __enter__(self) -> Cluster:
        problem = nginx_problem()
        if problem is not None:
            raise RuntimeError(problem)
        self.instances = [
            Instance(
                port,
                self.database_url,
                self.redis_url,
                self.prefix / f"instance-{port}.log",
                drain_s=self.drain_s,
                extra=self.extra,
                env=self.env,
            )
            for port in self.ports
        ]
        self.nginx = Nginx(self.prefix / "nginx", self.listen, self.ports)
        try:
            for instance in self.instances:  # side by side: each takes a few seconds
                instance.start()
            for instance in self.instances:
                instance.wait_ready()
            self.nginx.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for instance in self.instances:
            instance.stop()
