from __future__ import annotations

import os
from pathlib import Path

import pytest

from sources.base import SourceConfig
from sources.errors import ConfigError
from sources.records import SourceProtocol
from sources.registry.config_file import config_fingerprint, load_config
from sources.registry.store import ApplySummary, SourceStore, config_origin
from sources.rest_json.options import RestJsonOptions

FULL = """\
[[sources]]
id = "clinique-a"
name = "Clinique A"
protocol = "REST_JSON"
url = "https://api.clinique-a.example/v1"
timeout_s = 3
enabled = false
credentials_env = "CLINIQUE_A_API_KEY"

[sources.options]
page_size = 100
regions = ["MONTREAL", "LAVAL"]

[[sources]]
id = "publisher-b"
protocol = "SMART_SCHEDULING_LINKS"
url = "https://publisher-b.example/$bulk-publish"
"""

ALLOWED = (
    "allowed: cache_stale_s, cache_ttl_s, connect_timeout_s, credentials_env, enabled, id, "
    "max_concurrency, name, options, poll_interval_s, protocol, read_timeout_s, timeout_s, url, "
    "watch_calls_per_minute"
)


def write(tmp_path: Path, text: str, name: str = "sources.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_config_file_gives_its_sources_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)

    assert load_config(path) == [
        SourceConfig(
            id="clinique-a",
            name="Clinique A",
            protocol=SourceProtocol.REST_JSON,
            url="https://api.clinique-a.example/v1",
            timeout_s=3.0,
            enabled=False,
            credentials_env="CLINIQUE_A_API_KEY",
            options=RestJsonOptions(page_size=100, regions=["MONTREAL", "LAVAL"]),
        ),
        SourceConfig(
            id="publisher-b",
            name="publisher-b",
            protocol=SourceProtocol.SMART_SCHEDULING_LINKS,
            url="https://publisher-b.example/$bulk-publish",
        ),
    ]


def test_a_file_without_sources_declares_none(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "# nothing yet\n")) == []


def test_an_unknown_key_is_named_with_the_source_the_file_and_the_allowed_keys(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, FULL + "timout_s = 5\n")

    message = load_error(path)

    assert message == (
        f"{path}: source #2 (id 'publisher-b'): unknown key 'timout_s' ({ALLOWED}); "
        "did you mean 'timeout_s'?"
    )


def test_a_secret_key_in_the_file_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[sources]]\nid = "a"\nprotocol = "REST_JSON"\nurl = "https://a.example"\n'
        'api_key = "sk_live_123"\n',
    )

    message = load_error(path)

    assert f"{path}: source #1 (id 'a'): unknown key 'api_key'" in message
    assert "sk_live_123" not in message


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'timeout_s = "fast"',
            "timeout_s must be a number greater than 0 and at most 60, got 'fast'",
        ),
        ("timeout_s = 120", "timeout_s must be a number greater than 0 and at most 60, got 120"),
        ('enabled = "yes"', "enabled must be true or false, got 'yes'"),
        ("name = 12", "name must be a non-empty string, got 12"),
        ('credentials_env = "has space"', "credentials_env must be the NAME"),
        ('options = "page_size=1"', "options must be a table of settings, got 'page_size=1'"),
        ("options = { since = 2026-11-01T09:00:00 }", "options must hold only strings"),
    ],
)
def test_a_value_of_the_wrong_type_is_named_with_the_source_and_file(
    tmp_path: Path, line: str, message: str
) -> None:
    path = write(
        tmp_path,
        f'[[sources]]\nid = "a"\nprotocol = "REST_JSON"\nurl = "https://a.example"\n{line}\n',
    )

    assert load_error(path).startswith(f"{path}: source #1 (id 'a'): {message}")


def test_bad_toml_is_reported_with_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[[sources]]\nid = "a"\nprotocol = REST_JSON\n')

    message = load_error(path)

    assert message.startswith(f"{path}: invalid TOML: ")
    assert "line 3" in message


def test_a_missing_required_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[[sources]]\nid = "a"\nprotocol = "FHIR_R4"\n')

    assert load_error(path) == (
        f"{path}: source #1 (id 'a'): missing required key 'url' (required: id, protocol, url)"
    )


def test_a_missing_id_is_named_by_the_source_number(tmp_path: Path) -> None:
    path = write(
        tmp_path, FULL + '\n[[sources]]\nprotocol = "FHIR_R4"\nurl = "https://c.example"\n'
    )

    assert load_error(path).startswith(f"{path}: source #3: missing required key 'id'")


def test_duplicate_ids_in_one_file_are_refused(tmp_path: Path) -> None:
    duplicate = (
        '\n[[sources]]\nid = "clinique-a"\nprotocol = "FHIR_R4"\nurl = "https://c.example"\n'
    )
    path = write(tmp_path, FULL + duplicate)

    assert load_error(path) == (
        f"{path}: source #3 (id 'clinique-a'): id 'clinique-a' is already used by source #1; "
        "ids must be unique"
    )


def test_a_top_level_key_other_than_sources_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "timeout_s = 3\n" + FULL)

    assert load_error(path) == (
        f"{path}: unknown top-level key 'timeout_s' "
        "(only [[sources]] tables are allowed at the top level)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[sources]\nid = "a"\n', "'sources' must be an array of tables"),
        ("sources = [1]\n", "source #1 must be a table ([[sources]]), got 1"),
    ],
)
def test_sources_must_be_an_array_of_tables(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)

    assert load_error(path).startswith(f"{path}: {message}")


def test_a_missing_or_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    not_utf8 = tmp_path / "latin1.toml"
    not_utf8.write_bytes(b"# ok\n# Montr\xe9al\n")

    assert load_error(missing) == f"{missing}: config file not found"
    assert load_error(tmp_path).startswith(f"{tmp_path}: cannot read config file")
    assert load_error(not_utf8) == f"{not_utf8}: line 2: the file is not UTF-8 text"


def test_a_relative_path_is_reported_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "bad = 1\n")
    monkeypatch.chdir(tmp_path)

    assert load_error(Path("sources.toml")).startswith(f"{tmp_path / 'sources.toml'}: ")


# -- change detection ----------------------------------------------------------------


def test_the_fingerprint_moves_when_the_file_is_edited_or_replaced(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    assert config_fingerprint(path) is None

    write(tmp_path, FULL)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    first = config_fingerprint(path)
    assert first is not None
    assert config_fingerprint(path) == first

    # Same size, same mtime, new inode: an editor's write-and-rename.
    replacement = write(tmp_path, FULL, name="sources.toml.tmp")
    os.utime(replacement, ns=(1_000_000_000, 1_000_000_000))
    os.replace(replacement, path)
    second = config_fingerprint(path)
    assert second is not None and second != first

    # Same inode and size, later mtime: an edit in place.
    path.write_text(FULL.replace("Clinique A", "Clinique Z"), encoding="utf-8")
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert config_fingerprint(path) not in (first, second)


# -- the file applied to the registry ------------------------------------------------


def test_applying_a_file_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    with SourceStore(f"sqlite:///{tmp_path}/registry.sqlite3") as store:
        origin = config_origin(path)
        assert store.apply_config(load_config(path), origin) == ApplySummary(
            added=("clinique-a", "publisher-b")
        )
        revision = store.revision()

        assert store.apply_config(load_config(path), origin) == ApplySummary()
        assert store.revision() == revision

        write(tmp_path, FULL.split('[[sources]]\nid = "publisher-b"')[0])
        assert store.apply_config(load_config(path), origin) == ApplySummary(
            removed=("publisher-b",)
        )


def test_the_origin_is_the_absolute_path_without_resolving_symlinks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Kubernetes ConfigMap: the mounted file is a symlink into a directory
    # that is replaced on every update; the origin must stay put.
    target = write(tmp_path, FULL, name="..2026_11_01_data.toml")
    link = tmp_path / "sources.toml"
    link.symlink_to(target)
    monkeypatch.chdir(tmp_path)

    assert config_origin("sources.toml") == f"config:{link}"
    assert config_origin(tmp_path / "sub" / ".." / "sources.toml") == f"config:{link}"
