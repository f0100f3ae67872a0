"""
``aiguillage reload``: ask a running engine, over its admin listener, to reload its channels.

The command reads only the ``admin:`` section of engine.yaml, to find the engine: loading
and checking the channels is the engine's own work (it reports every error at its file:line
and keeps its previous channels when the files are bad), so that what is reloaded is what
the engine itself reads. An engine without an admin listener is reloaded with SIGHUP.
The request carries the admin token (``admin.token``, or the one the engine wrote in
``admin.token_file``), as every state-changing admin request must (engine.serve.adminauth).

test-case-name: tests.cli.test_reload
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

from engine.serve.adminauth import read_token
from engine.config.loader import ADMIN_SECTION
from engine.config.schema import (
    ConfigError, Problems, read_top_mapping, top_where, validate_section)

ANY_ADDRESS = ("", "0.0.0.0", "::")


class AdminUnknown(Exception):
    """engine.yaml does not say where the admin listener is."""


class EngineUnreachable(Exception):
    """Nothing answered at the admin listener's address."""


def _admin_values(config_path: str) -> dict | None:
    """engine.yaml's ``admin:`` section validated, or None if it has none; ConfigError."""
    problems = Problems()
    root = read_top_mapping(config_path, problems)
    problems.raise_if_any()
    where = top_where(config_path, root)
    admin = root.get("admin")
    if admin is None:
        return None
    values = validate_section(admin, ADMIN_SECTION,
                              where.child("admin", root.key_position("admin")), problems)
    problems.raise_if_any()
    return values


def admin_token(config_path: str) -> str | None:
    """The token to send: ``admin.token``, else the content of ``admin.token_file``.

    None when engine.yaml or the token file cannot be read (the engine then answers 401,
    which the command reports): ``--admin`` may point at an engine without a readable file.
    """
    try:
        values = _admin_values(config_path)
    except (ConfigError, OSError):  # admin_address reports a bad engine.yaml when it matters
        return None
    if values is None:
        return None
    if values["token"]:
        return values["token"]
    try:
        return read_token(values["token_file"])
    except (OSError, ValueError):
        return None


def admin_address(config_path: str) -> tuple[str, int]:
    """(host, port) of the admin listener engine.yaml configures.

    Raise :class:`engine.config.schema.ConfigError` if engine.yaml cannot be read, and
    :class:`AdminUnknown` if it has no ``admin:`` port, or port 0 (the engine picked one).
    """
    values = _admin_values(config_path)
    if values is None:
        raise AdminUnknown(f"{config_path} has no admin: section")
    if not values["port"]:
        raise AdminUnknown(f"{config_path}: admin.port is {values['port']}, so the engine "
                           "picked its port; name it with --admin HOST:PORT")
    host = values["host"]
    return ("127.0.0.1" if host in ANY_ADDRESS else host), values["port"]


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``PORT``) as (host, port); ValueError if it is neither."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8026, got {text!r}")
    return host or "127.0.0.1", int(port)


def request_reload(host: str, port: int, timeout: float, token: str | None = None) -> dict:
    """POST /reload to the admin listener (blocking), with ``token``; the report as a dict.

    Raise :class:`EngineUnreachable` when nothing answers, or something that is not an
    Aiguillage admin listener does, or the listener refuses the request (a 401 without
    the right token).
    """
    url = f"http://{host}:{port}/reload"
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=b"{}", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        hint = " (the admin token of engine.yaml's admin: section was not accepted)" \
            if error.code == 401 else ""
        raise EngineUnreachable(f"{url} answered {error.code} {error.reason}{hint}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise EngineUnreachable(f"no engine answered at {url}: {reason}") from None
    try:
        report = json.loads(body)
        report["outcome"]
    except (ValueError, TypeError, KeyError):
        raise EngineUnreachable(f"{url} did not answer with a reload report") from None
    return report
