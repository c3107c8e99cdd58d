"""The recorded feeds of ``../shared/fixtures/smart-scheduling-links/`` made ready for tests,
and the tests' own reading of them.

A feed's files are read once per run, every timestamp moved by the whole weeks that
bring its earliest slot into the week after :data:`TEST_NOW` (offset and precision kept
byte for byte, nothing else touched); :func:`relocated` moves its Locations to Quebec
towns, :func:`broken` breaks it as real publishers do. :func:`count` reads files with
plain ``json`` by the rules below, using none of the gateway's code: what the adapter
serves is checked against a reading that shares nothing with it.

- a free slot is a Slot whose ``status`` is ``free``; it is served when its schedule's
  first Location that the feed holds is inside Quebec; one with ``slot-capacity`` N is
  one slot of N seats (the specification: "the number of appointments represented by
  this slot"; the gateway's ``SlotRecord.capacity``), without it one seat;
- inside Quebec: the address's state is ``QC``/``Québec``/``Quebec``, or its postal
  code is Canadian and starts with G, H or J; outside: any other state or postal code.

Absent fixtures skip the test that asks for them, naming the missing path (CI has
``../shared`` beside the clone).
"""

from __future__ import annotations

import functools
import gzip
import itertools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import TEST_NOW

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "smart-scheduling-links"
RECORDED_ORIGIN = "http://127.0.0.1:19100"  # the manifests' output URLs point there
BOM = b"\xef\xbb\xbf"

FEEDS = (
    "cvs",
    "hl7-fsh",
    "hl7-md",
    "kroger",
    "prepmod-wa",
    "riteaid-full",
    "riteaid-nj",
    "spec-conv",
    "spec-ex",
    "walgreens",
)
# riteaid-full's manifest lists 48 files of other states that were never recorded: as
# it stands it is DEGRADED. riteaid-nj is the same feed restricted to what was recorded.
WHOLE = tuple(folder for folder in FEEDS if folder != "riteaid-full")
# The free Slot lines of each feed's published files, counted once by hand (grep) to
# check the test's own reader: a reader that read nothing would make every test pass.
FREE_SLOTS = {
    "cvs": 1,
    "hl7-fsh": 1,
    "hl7-md": 1,
    "kroger": 2,
    "prepmod-wa": 49,
    "riteaid-full": 1430,
    "riteaid-nj": 1430,
    "spec-conv": 6,
    "spec-ex": 300,
    "walgreens": 1,
}
WEEK = timedelta(weeks=1)
SLOT_CAPACITY = "http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity"
PLACE_WARNINGS = {"NO_POSITION", "APPROXIMATE_POSITION"}  # a Quebec place without position
# (line, city, postal code, latitude, longitude): real Quebec towns, a postal code of each.
TOWNS = (
    ("1 rue Rachel Est", "Montréal", "H2X 1Y4", 45.5175, -73.5797),
    ("2 rue des Jardins", "Québec", "G1R 4P5", 46.8131, -71.2075),
    ("191 rue du Palais", "Sherbrooke", "J1H 1Z1", 45.4030, -71.8886),
    ("25 rue Laurier", "Gatineau", "J8X 3X7", 45.4294, -75.7126),
    ("1325 place de l'Hôtel-de-Ville", "Trois-Rivières", "G9A 5H3", 46.3432, -72.5430),
    ("201 rue Racine Est", "Saguenay", "G7H 5B8", 48.4281, -71.0627),
    ("205 avenue de la Cathédrale", "Rimouski", "G5L 7C7", 48.4489, -68.5233),
    ("1 place du Souvenir", "Laval", "H7V 3Z4", 45.5573, -73.7206),
    ("4250 chemin de la Savane", "Longueuil", "J4K 4Y7", 45.5299, -73.5183),
    ("2175 chemin du Fleuve", "Lévis", "G6V 6N6", 46.8032, -71.1779),
    ("415 rue Lindsay", "Drummondville", "J2B 6X3", 45.8803, -72.4843),
    ("546 avenue Arnaud", "Sept-Îles", "G4R 2S6", 50.2124, -66.3792),
)
TIMESTAMP = re.compile(
    rb'"(\d{4}-\d\d-\d\dT\d\d:\d\d)((?::\d\d(?:\.\d+)?)?)(Z|[+-]\d\d(?::?\d\d)?)?"'
)
_CANADIAN_POSTAL_CODE = re.compile(r"[A-Z]\d[A-Z]\d[A-Z]\d")


def recorded_folder(folder: str) -> Path:
    """The folder of a recorded feed; the test is skipped, naming it, when it is absent."""
    path = FIXTURES / folder
    if not path.is_dir():
        pytest.skip(f"recorded feeds absent: {path} (CI has ../shared beside the clone)")
    return path


# -- the feeds, moved -----------------------------------------------------------------------


@dataclass(frozen=True)
class Feed:
    """One recorded feed, its timestamps moved by ``weeks``: the bytes to serve."""

    folder: str
    weeks: int
    published: dict[str, bytes]  # the files as recorded
    manifest: bytes  # output URLs still on RECORDED_ORIGIN
    files: dict[str, bytes]  # by path and query, as the manifest lists them
    headers: dict[str, dict[str, str]]  # recorded, by path and query
    types: dict[str, str]  # the manifest's output type, by path and query
    listed: tuple[str, ...]  # every path and query the manifest lists, in order

    def slot_files(self) -> list[str]:
        return [path for path in self.files if self.types.get(path) == "Slot"]


@functools.cache
def recorded(folder: str) -> Feed:
    """The folder's files read once per run, every timestamp moved by the whole weeks
    that bring its earliest slot into the week after :data:`TEST_NOW`."""
    root = recorded_folder(folder)
    published: dict[str, bytes] = {}
    headers: dict[str, dict[str, str]] = {}
    for file in sorted(root.rglob("*")):
        if not file.is_file() or file.name == "$bulk-publish" or file.name.endswith(".hdr.json"):
            continue
        path = "/" + file.relative_to(root.parent).as_posix().replace("%3F", "?")
        published[path] = file.read_bytes()
        header_file = file.with_name(file.name + ".hdr.json")
        if header_file.is_file():
            headers[path] = json.loads(header_file.read_bytes())
    earliest = min(
        instant(slot["start"]) for _, slot in resources(published, "Slot") if "start" in slot
    )
    weeks = math.floor((TEST_NOW - earliest) / WEEK) + 1
    manifest_bytes = (root / "$bulk-publish").read_bytes()
    outputs = json.loads(manifest_bytes)["output"]
    listed = tuple(o["url"].removeprefix(RECORDED_ORIGIN) for o in outputs)
    return Feed(
        folder,
        weeks,
        published,
        move(manifest_bytes, weeks),
        {path: move(data, weeks) for path, data in published.items()},
        headers,
        {o["url"].removeprefix(RECORDED_ORIGIN): o["type"] for o in outputs},
        listed,
    )


def move(data: bytes, weeks: int) -> bytes:
    """Every JSON string that is a date and time, moved by ``weeks``; its offset and
    precision kept byte for byte, nothing else touched."""

    def one(match: re.Match[bytes]) -> bytes:
        if match[3] is None:  # naive times are read by a rule others may change
            raise AssertionError(f"a timestamp without offset: {match[0]!r}")
        moved = datetime.fromisoformat(match[1].decode()) + weeks * WEEK
        return b'"%s%s%s"' % (moved.strftime("%Y-%m-%dT%H:%M").encode(), match[2], match[3])

    return TIMESTAMP.sub(one, data)


# -- the test's own reading ---------------------------------------------------------------


def _lines(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.split(b"\n"):
        line = line.strip().removeprefix(BOM).strip()
        if line:
            yield json.loads(line)


def resources(files: Mapping[str, bytes], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, data in files.items():
        for resource in _lines(data):
            if resource.get("resourceType") == kind:
                yield path, resource


def instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, text
    return moment


def _ref(reference: object, kind: str) -> str | None:
    text = reference.get("reference") if isinstance(reference, dict) else None
    parts = text.split("/") if isinstance(text, str) else []
    return parts[-1] if len(parts) >= 2 and parts[-2] == kind else None


def in_quebec(location: dict[str, Any]) -> bool | None:
    """The test's rule (see the module docstring); None when the address says nothing."""
    address = location.get("address") or {}
    code = str(address.get("postalCode") or "").replace(" ", "").upper()
    if _CANADIAN_POSTAL_CODE.fullmatch(code):
        return code[0] in "GHJ"
    state = address.get("state")
    if state:
        return state.strip() in ("QC", "Québec", "Quebec")
    return False if code else None


def seats(slot: dict[str, Any]) -> int:
    for extension in slot.get("extension") or ():
        if extension.get("url") == SLOT_CAPACITY:
            return int(extension["valueInteger"])
    return 1


Key = tuple[str, datetime, datetime, int]  # (Location id, start, end, seats)


@dataclass
class Counts:
    """What the moved files hold, by the test's rules."""

    window: tuple[datetime, datetime]
    served: dict[str, Counter[Key]] = field(default_factory=dict)  # by file
    outside_locations: int = 0
    outside_slots: int = 0
    unresolved: int = 0
    busy: int = 0
    free: int = 0
    no_position: int = 0  # Quebec Locations without a position
    as_strings: Counter[str] = field(default_factory=Counter)  # free slots, by file

    def all_served(self, *, but: str | None = None) -> Counter[Key]:
        return sum((c for path, c in self.served.items() if path != but), Counter())


def count(files: Mapping[str, bytes]) -> Counts:
    locations = dict((r["id"], r) for _, r in resources(files, "Location"))
    places = {lid: in_quebec(location) for lid, location in locations.items()}
    assert None not in places.values(), "the test's rule must decide every Location"
    schedules = {r["id"]: r for _, r in resources(files, "Schedule")}
    slots = list(resources(files, "Slot"))
    starts = [instant(s["start"]) for _, s in slots if s["status"] == "free"]
    counts = Counts(window=(TEST_NOW, max(starts) + timedelta(minutes=1)))
    assert min(starts) > TEST_NOW, "the move put a free slot before the clock"
    counts.outside_locations = sum(not inside for inside in places.values())
    counts.no_position = sum(
        1 for lid, location in locations.items() if places[lid] and "position" not in location
    )
    for path, slot in slots:
        if slot["status"] != "free":
            counts.busy += 1
            continue
        start, end = instant(slot["start"]), instant(slot["end"])
        if not counts.window[0] <= start < counts.window[1]:
            continue
        counts.free += 1
        schedule = schedules.get(_ref(slot["schedule"], "Schedule") or "")
        actors = schedule["actor"] if schedule else []
        where = next((lid for a in actors if (lid := _ref(a, "Location")) in locations), None)
        if where is None:
            counts.unresolved += 1
        elif not places[where]:
            counts.outside_slots += 1
        else:
            counts.served.setdefault(path, Counter())[(where, start, end, seats(slot))] += 1
        capacity = [e for e in slot.get("extension") or () if e.get("url") == SLOT_CAPACITY]
        counts.as_strings[path] += any(isinstance(e["valueInteger"], str) for e in capacity)
    return counts


def natural_deviations(files: Mapping[str, bytes]) -> set[tuple[str, str, int]]:
    """The deviations the files show as published, as (file, deviation, count)."""
    found = set()
    for path, data in files.items():
        name = path.split("?")[0]
        if data.startswith(BOM):
            found.add((name, "a UTF-8 byte-order mark", 1))
        if data.rsplit(b"\n", 1)[-1].strip():
            found.add((name, "no newline after the last line", 1))
    for path, n in count(files).as_strings.items():
        if n:
            found.add((path.split("?")[0], "numbers written as strings", n))
    return found


# -- relocating and breaking ----------------------------------------------------------------


def rewrite(
    files: Mapping[str, bytes], change: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> dict[str, bytes]:
    """``change`` applied to every resource line; a line it returns None for stays as
    it was, byte for byte (blank lines and the final newline, or its absence, too)."""
    out = {}
    for path, data in files.items():
        lines = data.split(b"\n")
        for n, line in enumerate(lines):
            changed = change(json.loads(line)) if line.strip() else None
            if changed is not None:
                text = json.dumps(changed, ensure_ascii=False, separators=(",", ":"))
                lines[n] = text.encode()
        out[path] = b"\n".join(lines)
    return out


def relocated(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """Every Location moved to a Quebec town: its address (line, city, state, postal
    code; district and country where given) and, where it has one, its position."""
    towns = itertools.cycle(TOWNS)

    def move_to_quebec(resource: dict[str, Any]) -> dict[str, Any] | None:
        if resource.get("resourceType") != "Location":
            return None
        line, city, code, latitude, longitude = next(towns)
        address = resource.setdefault("address", {})
        address.update(line=[line], city=city, state="QC", postalCode=code)
        for key, value in (("district", city), ("country", "CA")):
            if key in address:
                address[key] = value
        if "position" in resource:
            resource["position"] = {"latitude": latitude, "longitude": longitude}
        return resource

    return rewrite(files, move_to_quebec)


def broken(feed: Feed, files: Mapping[str, bytes]) -> tuple[dict[str, bytes], bytes]:
    """Every tolerable breakage at once: Locations without position, every slot's
    capacity a string (``"1"`` added where absent), a BOM before each file and the
    manifest, no final newline, slot files gzip'd without Content-Encoding."""

    def break_resource(resource: dict[str, Any]) -> dict[str, Any] | None:
        if resource.get("resourceType") == "Location":
            resource.pop("position", None)
        elif resource.get("resourceType") == "Slot":
            extensions = resource.setdefault("extension", [])
            capacity = [e for e in extensions if e.get("url") == SLOT_CAPACITY]
            if not capacity:
                capacity = [{"url": SLOT_CAPACITY, "valueInteger": 1}]
                extensions.append(capacity[0])
            capacity[0]["valueInteger"] = str(capacity[0]["valueInteger"])
        else:
            return None
        return resource

    out = {}
    slot_files = feed.slot_files()
    for path, data in rewrite(files, break_resource).items():
        data = BOM + data.rstrip(b"\n")
        out[path] = gzip.compress(data) if path in slot_files else data
    return out, BOM + feed.manifest


def breakages(feed: Feed, files: Mapping[str, bytes]) -> set[tuple[str, str, int]]:
    """What :func:`broken` makes of ``files``, as the adapter should name it."""
    found = {("manifest", "a UTF-8 byte-order mark", 1)}
    strings = Counter(path for path, slot in resources(files, "Slot") if slot["status"] == "free")
    for path in files:
        name = path.split("?")[0]
        found |= {(name, "a UTF-8 byte-order mark", 1)}
        found |= {(name, "no newline after the last line", 1)}
        if path in feed.slot_files():
            found.add((name, "gzip without Content-Encoding", 1))
        if strings[path]:
            found.add((name, "numbers written as strings", strings[path]))
    return found
