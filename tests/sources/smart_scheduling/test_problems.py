"""A bulk feed's problems: what an operator may see of its files' URLs."""

from __future__ import annotations

import pytest

from sources.smart_scheduling.problems import public_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:secret@cdn.example/x?sig=1#part", "https://cdn.example/x"),
        ("https://token@cdn.example:8443/x.ndjson", "https://cdn.example:8443/x.ndjson"),
        (
            "https://cdn.example/slots.ndjson?X-Amz-Signature=abc",
            "https://cdn.example/slots.ndjson",
        ),
        ("http://[::1", "?"),
    ],
)
def test_a_files_url_is_shown_without_credentials_or_signature(url: str, shown: str) -> None:
    assert public_url(url) == shown
    assert "secret" not in public_url(url) and "token" not in public_url(url)
