"""Tests for engine.serve.adminauth: the checks of admin requests, and the token file."""
from __future__ import annotations

import os

import pytest

from engine.serve.adminauth import AdminGuard, host_name, is_loopback, load_or_create_token

TOKEN = "t" * 32
GOOD = f"Bearer {TOKEN}"


def guard(bind: str = "127.0.0.1", allowed: tuple[str, ...] = ()) -> AdminGuard:
    return AdminGuard.for_listener(TOKEN, bind, allowed)


@pytest.mark.parametrize("header, name", [("127.0.0.1:8026", "127.0.0.1"),
                                          ("LocalHost", "localhost"), ("[::1]:80", "::1"),
                                          ("::1", "::1"), ("evil.example:80", "evil.example")])
def test_host_name(header, name):
    assert host_name(header) == name


def test_is_loopback():
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    assert not is_loopback("admin.example")


def test_reads_need_only_a_known_host():
    assert guard().refusal(b"GET", "127.0.0.1:8026", None, None, None) is None
    assert guard().refusal(b"GET", "rebound.example", None, None, None).code == 421
    assert guard().refusal(b"GET", None, None, None, None).code == 421


@pytest.mark.parametrize("origin, content_type, authorization, code", [
    (None, None, None, 401),
    (None, None, "Bearer nope", 401),
    (None, None, f"Basic {TOKEN}", 401),
    ("http://127.0.0.1:8026", None, GOOD, 403),
    (None, "application/x-www-form-urlencoded", GOOD, 403),
    (None, "multipart/form-data; boundary=x", GOOD, 403),
    (None, "text/plain;charset=UTF-8", GOOD, 403),
    (None, "application/json", GOOD, None),
    (None, None, GOOD, None),
])
def test_state_changes_need_the_token_and_no_browser(origin, content_type, authorization,
                                                     code):
    refusal = guard().refusal(b"POST", "localhost", origin, content_type, authorization)
    assert (refusal and refusal.code) == code


def test_an_any_address_bind_checks_host_only_when_names_are_given():
    assert guard("0.0.0.0").refusal(b"GET", "whatever", None, None, None) is None
    assert guard("0.0.0.0").refusal(b"POST", "whatever", None, None, None).code == 401
    named = guard("0.0.0.0", ("admin.example",))
    assert named.refusal(b"GET", "admin.example:8026", None, None, None) is None
    assert named.refusal(b"GET", "other.example", None, None, None).code == 421


def test_the_token_file_is_created_once_readable_by_its_owner_only(tmp_path):
    path = str(tmp_path / "admin.token")
    previous = os.umask(0)
    try:
        token = load_or_create_token(path)
    finally:
        os.umask(previous)
    assert len(token) >= 32 and os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_token(path) == token


def test_a_short_token_file_is_refused(tmp_path):
    path = tmp_path / "admin.token"
    path.write_text("short\n")
    path.chmod(0o600)
    with pytest.raises(ValueError, match="shorter than 16"):
        load_or_create_token(str(path))


def test_token_folder_created_owner_only(tmp_path):
    """If the token file's folder does not exist (a store kept elsewhere never made var/),
    then it is created 0700 and the token written in it, instead of the engine failing to
    start."""
    path = tmp_path / "var" / "admin.token"
    token = load_or_create_token(str(path))
    assert path.read_text().strip() == token
    assert (path.parent.stat().st_mode & 0o777, path.stat().st_mode & 0o777) == (0o700, 0o600)
