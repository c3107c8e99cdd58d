"""Start and stop the demo booking systems, each in its own OS process.

``DemoProviders`` runs ``python -m examples.demo_fhir``, ``examples.demo_rest``
and ``examples.demo_ssl`` on loopback ports (base port, + 1, + 2), waits until
they answer, and gives the registry definitions that point the gateway at them.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from examples.demo_rest import API_KEY_ENV
from examples.faults import Faults
from sources.records import SourceProtocol

DEFAULT_BASE_PORT = 8101
REST_KEY_ENV = API_KEY_ENV
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class DemoProvider:
    id: str
    name: str
    module: str
    protocol: SourceProtocol
    offset: int
    path: str


PROVIDERS = (
    DemoProvider(
        "demo-fhir",
        "Demo FHIR R4 scheduling server",
        "examples.demo_fhir",
        SourceProtocol.FHIR_R4,
        0,
        "/fhir",
    ),
    DemoProvider(
        "demo-rest",
        "Demo proprietary booking API",
        "examples.demo_rest",
        SourceProtocol.REST_JSON,
        1,
        "/api/v1",
    ),
    DemoProvider(
        "demo-ssl",
        "Demo SMART Scheduling Links bulk publisher",
        "examples.demo_ssl",
        SourceProtocol.SMART_SCHEDULING_LINKS,
        2,
        "/$bulk-publish",
    ),
)


@dataclass
class DemoProviders:
    """The demo processes. Use as a context manager, or ``start()`` / ``stop()``."""

    scale: float = 1.0
    base_port: int = DEFAULT_BASE_PORT
    host: str = "127.0.0.1"
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    faults: dict[str, Faults] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def port(self, provider: DemoProvider) -> int:
        return self.base_port + provider.offset

    def url(self, provider: DemoProvider) -> str:
        return f"http://{self.host}:{self.port(provider)}{provider.path}"

    def start(self, timeout_s: float = 60.0) -> None:
        os.environ[REST_KEY_ENV] = self.api_key
        for provider in PROVIDERS:
            if _port_open(self.host, self.port(provider)):
                self.stop()
                raise RuntimeError(
                    f"port {self.port(provider)} is already in use; "
                    "choose other ports with --demo-base-port"
                )
            argv = [
                sys.executable,
                "-m",
                provider.module,
                "--host",
                self.host,
                "--port",
                str(self.port(provider)),
                "--scale",
                str(self.scale),
            ]
            if provider.id in self.faults:
                argv += ["--faults", self.faults[provider.id].to_spec()]
            # The key goes through the environment, not argv, which any user can read.
            env = {**os.environ, REST_KEY_ENV: self.api_key}
            self.processes[provider.id] = subprocess.Popen(argv, cwd=ROOT, env=env)
        deadline = time.monotonic() + timeout_s
        for provider in PROVIDERS:
            while not _port_open(self.host, self.port(provider)):
                process = self.processes[provider.id]
                if process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"demo provider {provider.id} exited ({process.returncode})")
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"demo provider {provider.id} did not start in time")
                time.sleep(0.05)

    def stop(self, provider_id: str | None = None) -> None:
        """Stop one provider (SIGTERM, then SIGKILL after 5 s), or all of them."""
        for pid, process in list(self.processes.items()):
            if provider_id is not None and pid != provider_id:
                continue
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            del self.processes[pid]

    def definitions(self) -> list[dict[str, object]]:
        """Registry entries for the demo sources (the REST key comes from the environment)."""
        return [
            {
                "id": p.id,
                "name": p.name,
                "protocol": p.protocol.value,
                "url": self.url(p),
                "timeout_s": 2.0,
                "enabled": True,
                "credentials_env": REST_KEY_ENV if p.protocol is SourceProtocol.REST_JSON else None,
            }
            for p in PROVIDERS
        ]

    def __enter__(self) -> DemoProviders:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0
