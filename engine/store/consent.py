"""
Patients' oppositions to sharing: the table, and the DB-thread functions that record,
withdraw and find them.

An opposition is keyed by a patient identifier (domain OID, value) and a *scope* (what the
patient opposes: ``shared-record``, the feeding of the territory's shared record). Rows are
never deleted: an opposition is withdrawn by setting ``withdrawn_at`` and its cause, and a
later opposition is a new row, so that the history of what the patient said, when and through
whom (``operator:<name>`` or ``message:<id>``) is kept. At most one opposition per identifier
and scope is open (not withdrawn) at a time: opposing again while opposed changes nothing.

The table sits on the store's MetaData (migration ``0009_consent``) so that one Alembic history
creates it. The functions run in the caller's connection and transaction: the CLI's own, or
the group commit that records a message's decision (:class:`engine.store.ops.IngestOp`), so
that an ADT's opposition and its decision commit together.

test-case-name: tests.store.test_consent
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from sqlalchemy import (
    Column, Float, Index, String, Table, Text, and_, bindparam, or_, select, update)

from engine.store.records import ConsentChange
from engine.store.schema import ID, metadata

SHARED_RECORD = "shared-record"
DOMAIN_LENGTH, VALUE_LENGTH = 128, 64

consent_oppositions = Table(
    "consent_oppositions", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("domain", String(DOMAIN_LENGTH), nullable=False),  # CX.4.2 (or CX.4.1 alone)
    Column("value", String(VALUE_LENGTH), nullable=False),  # CX.1
    Column("scope", String(64), nullable=False),
    Column("since", Float, nullable=False),
    Column("cause", String(255), nullable=False),  # operator:<name> | message:<id>
    Column("reason", Text, nullable=True),
    Column("withdrawn_at", Float, nullable=True),
    Column("withdrawn_cause", String(255), nullable=True),
)
Index("ix_consent_oppositions_patient", consent_oppositions.c.domain,
      consent_oppositions.c.value, consent_oppositions.c.scope)

_T = consent_oppositions


class ConsentError(ValueError):
    """An operation on oppositions that cannot be done (nothing to withdraw, a bad key)."""


@dataclass(frozen=True)
class Opposition:
    """One opposition row, open or withdrawn."""

    id: int
    domain: str
    value: str
    scope: str
    since: float
    cause: str
    reason: str | None = None
    withdrawn_at: float | None = None
    withdrawn_cause: str | None = None

    @property
    def open(self) -> bool:
        return self.withdrawn_at is None

    @property
    def patient(self) -> str:
        """The identifier as HL7 writes it: ``VALUE^^^&OID&ISO``."""
        return f"{self.value}^^^&{self.domain}&ISO"


def _check_key(domain: str, value: str) -> None:
    if not domain or not value:
        raise ConsentError("a patient identifier needs a value and a domain (assigning authority)")
    if len(domain) > DOMAIN_LENGTH or len(value) > VALUE_LENGTH:
        raise ConsentError(f"patient identifier {value!r} in {domain!r} is longer than the "
                           f"{VALUE_LENGTH}/{DOMAIN_LENGTH} characters kept")


def _row(row: Any) -> Opposition:
    return Opposition(**row._mapping)


def open_opposition(conn: Any, domain: str, value: str, scope: str) -> Opposition | None:
    """The open opposition of one identifier in ``scope``, or None."""
    row = conn.execute(select(_T).where(
        _T.c.domain == domain, _T.c.value == value, _T.c.scope == scope,
        _T.c.withdrawn_at.is_(None)).order_by(_T.c.id.desc())).first()
    return _row(row) if row is not None else None


def oppose(conn: Any, domain: str, value: str, scope: str, cause: str,
           reason: str | None = None, at: float | None = None) -> tuple[Opposition, bool]:
    """Record an opposition (in the caller's transaction); (the open opposition, whether it
    is new). Opposing again while opposed keeps the first one."""
    _check_key(domain, value)
    current = open_opposition(conn, domain, value, scope)
    if current is not None:
        return current, False
    at = time.time() if at is None else at
    new_id = conn.execute(_T.insert().values(
        domain=domain, value=value, scope=scope, since=at, cause=cause[:255],
        reason=reason)).inserted_primary_key[0]
    return Opposition(new_id, domain, value, scope, at, cause[:255], reason), True


def withdraw(conn: Any, domain: str, value: str, scope: str, cause: str,
             at: float | None = None) -> Opposition | None:
    """Withdraw the open opposition of one identifier (in the caller's transaction); the
    withdrawn row, or None when there was none open."""
    current = open_opposition(conn, domain, value, scope)
    if current is None:
        return None
    at = time.time() if at is None else at
    conn.execute(update(_T).where(_T.c.id == current.id).values(
        withdrawn_at=at, withdrawn_cause=cause[:255]))
    return Opposition(**{**current.__dict__, "withdrawn_at": at,
                         "withdrawn_cause": cause[:255]})


# Built once: on the path of every message to the shared record, building and cache-keying a
# statement per call costs more than running it (bench/consent_lookup.py).
_OPEN = select(_T).where(_T.c.domain == bindparam("d"), _T.c.value == bindparam("v"),
                         _T.c.scope == bindparam("s"), _T.c.withdrawn_at.is_(None))


def find_open(conn: Any, identifiers: Iterable[tuple[str, str]],
              scope: str) -> Opposition | None:
    """The oldest open opposition in ``scope`` of any of ``identifiers`` (domain, value): one
    indexed lookup per identifier (a patient has a handful)."""
    found = [_row(row) for domain, value in sorted(set(identifiers))
             for row in conn.execute(_OPEN, {"d": domain, "v": value, "s": scope})]
    return min(found, key=lambda o: (o.since, o.id)) if found else None


def history(conn: Any, identifiers: Iterable[tuple[str, str]]) -> list[Opposition]:
    """Every opposition (open and withdrawn, every scope) of ``identifiers``, oldest first."""
    keys = sorted(set(identifiers))
    if not keys:
        return []
    match = or_(*(and_(_T.c.domain == domain, _T.c.value == value) for domain, value in keys))
    return [_row(row) for row in conn.execute(select(_T).where(match).order_by(_T.c.since,
                                                                                 _T.c.id))]


def apply_changes(conn: Any, changes: Sequence[ConsentChange], cause: str, at: float) -> None:
    """Record what a message's decision says of its patient's consent (writer thread, in the
    group commit): each change opposes or withdraws for every identifier it names."""
    for change in changes:
        for domain, value in change.identifiers:
            if len(domain) > DOMAIN_LENGTH or len(value) > VALUE_LENGTH:
                continue  # not a key the table keeps; the decision's detail says what was read
            if change.opposed:
                oppose(conn, domain, value, change.scope, cause, change.reason, at)
            else:
                withdraw(conn, domain, value, change.scope, cause, at)
