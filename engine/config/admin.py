"""
The ``admin:`` section of engine.yaml: where the admin listener binds, and its token.

A listener bound beyond loopback must have its token configured (``token_file`` or
``token``): one generated on the server at first start is a token no remote operator was
ever handed, and a configuration that exposes ``/reload`` without any is refused at its
file:line rather than accepted silently. See :mod:`engine.serve.adminauth` for what the token
guards.

test-case-name: tests.config.test_admin_section
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from engine.serve.adminauth import MIN_TOKEN_LENGTH, is_loopback
from engine.config.schema import Problems, Section, Where, describe, key_position
from engine.config.yamlsource import YAMLMapping
from engine.interfaces import OptionSpec


@dataclass(frozen=True)
class AdminConfig:
    """The HTTP admin and metrics listener; ``port`` 0 picks a free port.

    ``token`` when configured, else the one in ``token_file`` (created at first start)
    authenticates state-changing requests (see :mod:`engine.serve.adminauth`)."""

    host: str
    port: int
    token_file: str = ""
    token: str | None = None
    allowed_hosts: tuple[str, ...] = ()


ADMIN_SECTION = Section(
    (OptionSpec("host", "str", default="127.0.0.1",
                help="a non-loopback address needs token or token_file"),
     OptionSpec("port", "port", help="0 picks a free port; absent means no admin listener"),
     OptionSpec("token_file", "path", default="admin.token",
                help="bearer token for POST /reload; created 0600 at first start if missing"),
     OptionSpec("token", "str", help="the bearer token itself (else token_file's)"),
     OptionSpec("allowed_hosts", "list", default=[],
                help="names clients may use in the Host header besides loopback and host")),
    checks={"token": lambda token: None if len(token) >= MIN_TOKEN_LENGTH else
            f"a token needs at least {MIN_TOKEN_LENGTH} characters"})


def admin_config(root: YAMLMapping, values: dict | None, where: Where,
                 problems: Problems) -> AdminConfig | None:
    """The admin listener; one bound beyond loopback must have its token configured, since
    a token generated on the server is one no remote operator was ever given."""
    if not values or values["port"] is None:
        return None
    raw = root.get("admin")
    configured = isinstance(raw, Mapping) and ("token" in raw or "token_file" in raw)
    if values["host"] is not None and not is_loopback(values["host"]) and not configured:
        here = where.child("admin", root.key_position("admin")).child(
            "host", key_position(raw, "host"))
        problems.add(here, f"the admin listener on {describe(values['host'])} is reachable "
                           "from other machines: configure admin.token_file (or admin.token) "
                           "so that POST /reload needs a token you hand out")
    hosts = tuple(str(name) for name in values["allowed_hosts"] or ())
    return AdminConfig(host=values["host"], port=values["port"],
                       token_file=values["token_file"], token=values["token"],
                       allowed_hosts=hosts)


def admin_port_where(root: YAMLMapping, where: Where) -> Where:
    """Where engine.yaml writes ``admin.port`` (the listener checks point there)."""
    admin = root.get("admin")
    return where.child("admin", root.key_position("admin")).child(
        "port", key_position(admin, "port"))
