"""Coverage by region: how many clinics and free slots in the next days each Quebec
region has, counted in the background from what the gateway already holds (a bulk
feed's index, the answers of live sources in the pool's cache), never by calling a
source. The status page (``edge/status/``) shows it.

    coverage = RegionCoverage(pool, clock=settings.clock)
    task = asyncio.create_task(coverage.run())   # once a minute at most
    coverage.report                              # the last count, or None
"""

from sources.coverage.sightings import CacheSightings
from sources.coverage.task import CoverageReport, RegionCount, RegionCoverage, RegistryChange

__all__ = [
    "CacheSightings",
    "CoverageReport",
    "RegionCount",
    "RegionCoverage",
    "RegistryChange",
]
