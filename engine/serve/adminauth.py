"""
Who may use the admin listener: a bearer token for what changes state, and no browser.

The admin listener reloads the engine. A web page open in a browser on the same machine can
POST a form to ``http://127.0.0.1:8026/reload`` (a "simple" cross-origin request needs no
preflight), and a DNS-rebinding page can even read the answers, so being bound to loopback is
not enough. Three checks, in :class:`AdminGuard`, apply to every request:

* ``Host`` must name the listener (a loopback name, its bind address, or one of
  ``admin.allowed_hosts``): a rebinding page sends its own domain name there;
* a request that changes state (any method but GET and HEAD) is refused if it carries an
  ``Origin`` header or a form content-type, which only browsers send, and
* it must carry ``Authorization: Bearer <token>``.

The token is ``admin.token`` when configured, else read from ``admin.token_file``, which the
engine creates at its first start with :mod:`secrets`, readable by its owner only, and which
``aiguillage reload`` reads to authenticate. A listener bound to anything but loopback must
have its token configured (the loader refuses it otherwise).

test-case-name: tests.serve.test_adminauth
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
import stat
from dataclasses import dataclass

log = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})
READ_METHODS = frozenset({b"GET", b"HEAD"})
# What an HTML form can send without a preflight: refused on state-changing requests.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_or_create_token(path: str) -> str:
    """The token in ``path``, created (0600, exclusively) with a fresh random one if absent.

    Blocking: called once, when the engine starts its admin listener. A file others can read
    is used anyway, with a warning naming it: refusing would leave the engine without an
    admin listener over a mode an operator can fix with one chmod. A missing folder is
    created 0700 (the token's folder is the store's ``var/`` by default, which a store kept
    elsewhere never creates).
    """
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        os.makedirs(folder, mode=0o700, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_token(path)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    log.info("admin token created in %s (readable by its owner only)", path)
    return read_token(path)


def read_token(path: str) -> str:
    """The token written in ``path``; OSError if it cannot be read, ValueError if too short."""
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("admin token file %s is readable by others (mode %o): chmod 600 it",
                    path, mode & 0o777)
    with open(path, encoding="utf-8") as handle:
        token = handle.read().strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"admin token in {path} is shorter than {MIN_TOKEN_LENGTH} characters")
    return token


def host_name(header: str) -> str:
    """The name in a ``Host`` header, port and IPv6 brackets removed, lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    name, colon, port = header.rpartition(":")
    return name if colon and port.isdigit() and ":" not in name else header


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: the HTTP status and a sentence for the body."""

    code: int
    reason: str


@dataclass(frozen=True)
class AdminGuard:
    """The checks of every admin request; ``hosts`` None means any ``Host`` is accepted
    (an any-address bind with no ``allowed_hosts``: the token still guards state changes)."""

    token: str
    hosts: frozenset[str] | None

    @classmethod
    def for_listener(cls, token: str, bind_host: str,
                     allowed_hosts: tuple[str, ...] = ()) -> "AdminGuard":
        """The guard of a listener bound to ``bind_host``."""
        if bind_host in ANY_ADDRESS and not allowed_hosts:
            return cls(token, None)
        names = set(LOOPBACK_NAMES) | {name.lower() for name in allowed_hosts}
        if bind_host not in ANY_ADDRESS:
            names.add(bind_host.lower())
        return cls(token, frozenset(names))

    def refusal(self, method: bytes, host: str | None, origin: str | None,
                content_type: str | None, authorization: str | None) -> Refusal | None:
        """None if the request may go on, else why not (pure: headers as sent, or None)."""
        if self.hosts is not None and (host is None or host_name(host) not in self.hosts):
            return Refusal(421, f"Host {host!r} does not name this admin listener")
        if method in READ_METHODS:
            return None
        if origin is not None:
            return Refusal(403, "state-changing requests from a browser (Origin) are refused")
        media = (content_type or "").split(";")[0].strip().lower()
        if media in FORM_TYPES:
            return Refusal(403, f"state-changing requests with content-type {media} are "
                                "refused (an HTML form can send them)")
        if not self.authorized(authorization):
            return Refusal(401, "a valid 'Authorization: Bearer <token>' header is required")
        return None

    def authorized(self, authorization: str | None) -> bool:
        """Whether ``authorization`` is ``Bearer <our token>`` (compared in constant time)."""
        scheme, _, given = (authorization or "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.token.encode())
