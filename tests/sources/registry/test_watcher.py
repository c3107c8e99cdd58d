"""The registry watcher: the config file and the registry reach the pool, once each."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from sources.base import SourceConfig
from sources.registry.store import SourceStore
from sources.registry.watcher import RegistryWatcher


class RecordingPool:
    """Stands for ``SourcePool``: remembers the ids of each sync."""

    def __init__(self) -> None:
        self.synced: list[list[str]] = []
        self.changed = asyncio.Event()

    async def sync(self, configs: Sequence[SourceConfig]) -> None:
        self.synced.append([c.id for c in configs])
        self.changed.set()


def _config(*ids: str) -> str:
    return "".join(
        f'[[sources]]\nid = "{i}"\nprotocol = "FHIR_R4"\nurl = "http://127.0.0.1:9/fhir"\n'
        for i in ids
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SourceStore]:
    with SourceStore(f"sqlite:///{tmp_path / 'registry.sqlite3'}") as store:
        yield store


async def test_config_changes_reach_the_pool_and_nothing_else_resyncs_it(
    tmp_path: Path, store: SourceStore, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "sources.toml"
    config.write_text(_config("a"))
    pool = RecordingPool()
    watcher = RegistryWatcher(store, pool, config_path=config, poll_s=1.0)
    await watcher.refresh()
    await watcher.refresh()
    assert pool.synced == [["a"]]

    config.write_text(_config("a") + 'colour = "red"\n')
    with caplog.at_level(logging.ERROR, logger="passerelle"):
        await watcher.refresh()
    assert pool.synced == [["a"]]  # a bad file keeps the current sources...
    assert "colour" in caplog.text

    config.write_text(_config("bb", "c"))
    await watcher.refresh()
    assert pool.synced == [["a"], ["bb", "c"]]  # ...and the next good one replaces them


async def test_the_watcher_outlives_a_database_hiccup(
    store: SourceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    revision = store.revision
    calls: list[int] = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return revision()

    monkeypatch.setattr(store, "revision", flaky)
    pool = RecordingPool()
    task = asyncio.create_task(RegistryWatcher(store, pool, config_path=None, poll_s=0.01).run())
    try:
        await asyncio.wait_for(pool.changed.wait(), 5)
    finally:
        task.cancel()
    assert len(calls) >= 2 and pool.synced == [[]]
