"""The cross-site rule of the API's browser safety (app/api/security.py): an Origin is this
server's when its host and port are the Host header's, default ports included."""

from __future__ import annotations

import pytest

from lifeboat.app.api.security import cross_site


def scope(host: str | None, **headers: str) -> dict[str, object]:
    pairs = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    if host is not None:
        pairs.append((b"host", host.encode()))
    return {"type": "http", "headers": pairs}


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("127.0.0.1:7800", "http://127.0.0.1:7800"),
        ("backup.example.com", "https://backup.example.com"),  # behind a proxy: 443 on both sides
        ("backup.example.com", "https://Backup.Example.com:443"),
        ("backup.example.com:8443", "https://backup.example.com:8443"),
        ("[::1]:7800", "http://[::1]:7800"),
        ("localhost:7800", "http://localhost:7800"),
    ],
)
def test_the_servers_own_origin_passes(host: str, origin: str) -> None:
    assert cross_site(scope(host, origin=origin)) is None
    assert cross_site(scope(host, origin=origin, sec_fetch_site="same-origin")) is None


@pytest.mark.parametrize(
    ("host", "origin", "why"),
    [
        ("127.0.0.1:7800", "http://evil.example", "not this server's"),
        ("127.0.0.1:7800", "http://127.0.0.1:7801", "not this server's"),
        ("127.0.0.1:7800", "http://localhost:7800", "not this server's"),
        ("backup.example.com", "https://backup.example.com:8443", "not this server's"),
        ("backup.example.com", "http://backup.example.com.evil.example", "not this server's"),
        ("[::1]:7800", "http://[::2]:7800", "not this server's"),
        ("127.0.0.1:7800", "null", "opaque"),
        ("127.0.0.1:7800", "http://[bad", "not a URL"),
        (None, "http://127.0.0.1:7800", "no Host"),
    ],
)
def test_another_origin_is_named(host: str | None, origin: str, why: str) -> None:
    found = cross_site(scope(host, origin=origin))
    assert found is not None and why in found


def test_a_request_without_origin_passes_unless_the_browser_marks_it_cross_site() -> None:
    assert cross_site(scope("127.0.0.1:7800")) is None
    assert cross_site(scope("127.0.0.1:7800", sec_fetch_site="none")) is None  # typed in the address bar
    marked = cross_site(scope("127.0.0.1:7800", sec_fetch_site="cross-site"))
    assert marked is not None and "Sec-Fetch-Site" in marked
