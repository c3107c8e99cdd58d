"""Keeps the live sources in step with the registry and the config file.

The gateway's lifespan builds one :class:`RegistryWatcher` and runs it for as long as
the process serves: every ``poll_s`` seconds it applies a changed config file to the
registry, then hands the registry's sources to the pool when their revision moved.

The pool is whatever has an async ``sync(configs)`` (:class:`SyncsSources`), so this
package does not import ``sources.pool``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from sources.base import SourceConfig
from sources.errors import ConfigError
from sources.registry.config_file import config_fingerprint, load_config
from sources.registry.store import SourceStore, config_origin

__all__ = ["RegistryWatcher", "SyncsSources"]

logger = logging.getLogger("passerelle")


class SyncsSources(Protocol):
    """What the watcher keeps in step: ``sources.pool.fanout.SourcePool``."""

    async def sync(self, configs: Sequence[SourceConfig]) -> None: ...


class RegistryWatcher:
    """Keeps ``pool`` in step with ``store`` and the config file at ``config_path``.

    >>> watcher = RegistryWatcher(store, pool, config_path=None, poll_s=1.0)
    >>> await watcher.refresh()  # at start-up: the pool holds the registry's sources
    >>> task = asyncio.create_task(watcher.run())  # then every second
    """

    def __init__(
        self,
        store: SourceStore,
        pool: SyncsSources,
        *,
        config_path: Path | None,
        poll_s: float,
    ) -> None:
        self.store = store
        self.pool = pool
        self.config_path = config_path
        self.poll_s = poll_s
        self._revision: int | None = None
        self._fingerprint: object = None

    async def refresh(self) -> None:
        """Apply the config file if it changed, then sync the pool if the registry did."""
        path = self.config_path
        if path is not None:
            fingerprint = await asyncio.to_thread(config_fingerprint, path)
            if fingerprint != self._fingerprint:
                try:
                    definitions = await asyncio.to_thread(load_config, path)
                    summary = await asyncio.to_thread(
                        self.store.apply_config, definitions, config_origin(path)
                    )
                    if summary.changed:
                        logger.info("config %s applied: %s", path, summary)
                except ConfigError as exc:
                    logger.error("config not applied, keeping the current sources: %s", exc)
                # Only now: a database hiccup above leaves the file to apply next time.
                self._fingerprint = fingerprint
        revision = await asyncio.to_thread(self.store.revision)
        if revision != self._revision:
            configs = await asyncio.to_thread(self.store.configs, os.environ)
            await self.pool.sync(configs)
            self._revision = revision
            logger.info("sources: %s", ", ".join(c.id for c in configs if c.enabled) or "none")

    async def run(self) -> None:
        """Refresh every ``poll_s`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.refresh()
            except Exception:  # the watcher must outlive a database hiccup
                logger.exception("registry refresh failed; retrying")
