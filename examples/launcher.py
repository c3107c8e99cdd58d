"""Start and stop the demo booking systems, each in its own OS process.

``DemoProviders`` runs ``python -m examples.demo_fhir``, ``examples.demo_rest``
and ``examples.demo_ssl`` on loopback ports (base port, + 1, + 2), waits until
they answer, and gives the registry definitions that point the gateway at them.

Their own output goes to one log file each (``log_dir``), so that the console
holds the gateway's lines only; ``log_dir=None`` shows it (``--log-level debug``).
A watchdog reaps a demo process that dies (no zombie is left) and logs it once,
with its exit status and where its output went: the gateway then reports that
source unavailable. Each runs in a session of its own, so that only ``stop()``
ends it: the parent must stop them when it is signalled (``python app.py`` does).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from examples.demo_rest import API_KEY_ENV
from examples.faults import Faults
from sources.records import SourceProtocol

DEFAULT_BASE_PORT = 8101
REST_KEY_ENV = API_KEY_ENV
ROOT = Path(__file__).resolve().parents[1]
# How often the watchdog looks at the demo processes.
WATCH_EVERY_S = 0.5

logger = logging.getLogger("passerelle.demo")


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
    # Slots each demo system opens and takes a minute (examples.churn); 0: none.
    churn: float = 0.0
    # Where each demo system's own output goes (<id>.log); None: this console.
    log_dir: Path | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stop_watching: threading.Event = field(default_factory=threading.Event, repr=False)
    _watchdog: threading.Thread | None = field(default=None, repr=False)

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
            if self.churn:
                argv += ["--churn", f"{self.churn:g}"]
            # The key goes through the environment, not argv, which any user can read.
            env = {**os.environ, REST_KEY_ENV: self.api_key}
            self.processes[provider.id] = self._spawn(provider, argv, env)
        deadline = time.monotonic() + timeout_s
        for provider in PROVIDERS:
            while not _port_open(self.host, self.port(provider)):
                process = self.processes[provider.id]
                if process.poll() is not None:
                    self.stop()
                    path = self.log_path(provider.id)
                    raise RuntimeError(
                        f"demo provider {provider.id} exited ({exit_status(process.returncode)})"
                        + (f", its output is in {path}" if path is not None else "")
                    )
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"demo provider {provider.id} did not start in time")
                time.sleep(0.05)
        self._stop_watching.clear()
        self._watchdog = threading.Thread(target=self._watch, name="demo-watchdog", daemon=True)
        self._watchdog.start()

    def log_path(self, provider_id: str) -> Path | None:
        """Where a demo system's own output goes, or None when it is shown."""
        return self.log_dir / f"{provider_id}.log" if self.log_dir is not None else None

    def _spawn(
        self, provider: DemoProvider, argv: list[str], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        # A session of its own: a terminal's Ctrl-C (sent to the whole foreground
        # group) must not stop it while the gateway drains, which the watchdog
        # would report as a death; stop() ends it, after the gateway.
        path = self.log_path(provider.id)
        if path is None:
            return subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _watch(self) -> None:
        """Reap and report, once, every demo process that exits on its own."""
        while not self._stop_watching.wait(WATCH_EVERY_S):
            with self._lock:
                running = list(self.processes.items())
            for provider_id, process in running:
                code = process.poll()  # reaps it: no zombie is left behind
                if code is None or self._stop_watching.is_set():
                    continue
                with self._lock:
                    if self.processes.get(provider_id) is not process:
                        continue  # stopped on purpose meanwhile
                    del self.processes[provider_id]
                path = self.log_path(provider_id)
                logger.error(
                    "demo booking system %s exited (%s)%s; the gateway reports it unavailable",
                    provider_id,
                    exit_status(code),
                    f", its output is in {path}" if path is not None else "",
                )

    def stop(self, provider_id: str | None = None) -> None:
        """Stop one provider (SIGTERM, then SIGKILL after 5 s), or all of them."""
        if provider_id is None:
            self._stop_watching.set()
        with self._lock:
            chosen = {
                pid: self.processes.pop(pid)
                for pid in list(self.processes)
                if provider_id is None or pid == provider_id
            }
        for process in chosen.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if provider_id is None and self._watchdog is not None:
            self._watchdog.join(timeout=2 * WATCH_EVERY_S)
            self._watchdog = None

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
                # Configuration, not code: where the REST API reads one slot (checks),
                # and its slot listing's languages parameter.
                **(
                    {
                        "options": {
                            "slot_path": "disponibilites/{id}",
                            "slot_languages_param": "langues",
                        }
                    }
                    if p.protocol is SourceProtocol.REST_JSON
                    else {}
                ),
            }
            for p in PROVIDERS
        ]

    def __enter__(self) -> DemoProviders:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def exit_status(code: int) -> str:
    """``-9`` -> ``"killed by SIGKILL"``, ``1`` -> ``"exit code 1"``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0
