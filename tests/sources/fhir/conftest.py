"""The Medplum engine, started once per data set variant for the whole session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from sources.base import SourceConfig
from sources.records import SourceProtocol
from tests.sources.fhir.medplum import make_dataset
from tests.sources.fhir.medplum.engine import running_engine
from tests.sources.fhir.medplum.expected import DataSet

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

VARIANTS = {"local": make_dataset.LOCAL_FILE, "utc": make_dataset.UTC_FILE}


@dataclass(frozen=True)
class Engine:
    """A running engine: its FHIR base URL, the file it loaded and the tests' reading of it."""

    variant: str
    url: str
    path: Path
    data: DataSet

    def definition(self, url: str | None = None, source_id: str = "medplum") -> SourceConfig:
        return SourceConfig(
            id=source_id, name="Medplum", protocol=SourceProtocol.FHIR_R4, url=url or self.url
        )


@pytest.fixture(scope="session")
def dataset_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("medplum-data")
    make_dataset.write(folder)
    return folder


@pytest.fixture(scope="session", params=sorted(VARIANTS))
def medplum(request: pytest.FixtureRequest, dataset_folder: Path) -> Iterator[Engine]:
    """The engine over each variant of the data set (local offsets; one clinic in UTC)."""
    path = dataset_folder / VARIANTS[request.param]
    with running_engine(path) as url:
        yield Engine(request.param, url, path, DataSet.read(path))


@pytest.fixture(scope="session")
def medplum_local(dataset_folder: Path) -> Iterator[Engine]:
    """The engine over the local-offsets variant alone, for the proxy tests."""
    path = dataset_folder / make_dataset.LOCAL_FILE
    with running_engine(path) as url:
        yield Engine("local", url, path, DataSet.read(path))
