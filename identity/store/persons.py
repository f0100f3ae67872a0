"""
Persons, their identifiers and traits: the write primitives of the index.

Each function runs in the caller's transaction (``with engine.begin() as conn``)
and records a history event naming its cause; the caller's transaction makes
the change and its event one.

test-case-name: tests.identity.store.test_service
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from identity.matching.blocking import blocking_keys
from identity.matching.profile import profile
from identity.model import LocalIdentifier, Traits
from identity.store import pg_writes
from identity.store.codec import json_profile, row_traits, traits_dict, traits_row
from identity.store.history import IdentityError, check_cause, event_detail, record
from identity.store.index import count_names, index_person, unindex_person
from identity.store.names import forget_names, index_names, name_rows
from identity.store.review import reject_pair
from identity.store.schema import ACTIVE, id_domains, id_identifiers, id_persons, id_traits


# Statements built once: building and cache-keying a statement per call costs more than
# running it.
_ADD_DOMAIN = {"sqlite": sqlite.insert(id_domains).on_conflict_do_nothing(),
               "postgresql": postgresql.insert(id_domains).on_conflict_do_nothing()}
_PERSON = select(id_persons).where(id_persons.c.id == bindparam("id"))
_TRAITS = select(id_traits).where(id_traits.c.person_id == bindparam("id"))
_OWNER = select(id_identifiers.c.person_id).where(
    id_identifiers.c.domain == bindparam("d"), id_identifiers.c.value == bindparam("v"))
_MOVE = update(id_identifiers).where(
    id_identifiers.c.domain == bindparam("d"), id_identifiers.c.value == bindparam("v"))

_RENAME = update(id_identifiers).where(
    id_identifiers.c.domain == bindparam("d"), id_identifiers.c.value == bindparam("v")).values(
    domain=bindparam("nd"), value=bindparam("nv"), linked_at=bindparam("at"))
_DROP = id_identifiers.delete().where(
    id_identifiers.c.domain == bindparam("d"), id_identifiers.c.value == bindparam("v"))


def ensure_domain(conn: Any, identifier: LocalIdentifier) -> None:
    """Register the identifier's domain the first time it is seen."""
    domain = identifier.domain
    conn.execute(_ADD_DOMAIN[conn.dialect.name],
                 {"oid": domain.oid, "namespace": domain.namespace, "id_type": domain.id_type})


def person_row(conn: Any, person_id: int) -> Any:
    """The id_persons row, or IdentityError naming the person."""
    row = conn.execute(_PERSON, {"id": person_id}).first()
    if row is None:
        raise IdentityError(f"person {person_id} does not exist")
    return row


def active_person(conn: Any, person_id: int) -> Any:
    """The row of a person that can take part in a change (not merged away)."""
    row = person_row(conn, person_id)
    if row.status != ACTIVE:
        raise IdentityError(f"person {person_id} is merged into {row.merged_into}")
    return row


def traits_of(conn: Any, person_id: int) -> Traits:
    row = conn.execute(_TRAITS, {"id": person_id}).first()
    if row is None:
        raise IdentityError(f"person {person_id} has no traits")
    return row_traits(row._mapping)


def owner(conn: Any, identifier: LocalIdentifier) -> int | None:
    """The person holding ``identifier``, or None."""
    return conn.execute(_OWNER, {"d": identifier.domain.oid, "v": identifier.value}).scalar()


def create_person(conn: Any, traits: Traits, cause: str,
                  identifier: LocalIdentifier | None = None) -> int:
    """A new active person with these traits (and identifier); its id."""
    now = time.time()
    check_cause(cause)
    row = traits_row(traits)
    if conn.dialect.name == "postgresql":
        person_id = _create_in_one(conn, row, traits, cause, now)
    else:
        person_id = conn.execute(id_persons.insert(), {
            "status": ACTIVE, "created_at": now, "updated_at": now}).inserted_primary_key[0]
        conn.execute(id_traits.insert(), {"person_id": person_id, **row})
        index_names(conn, person_id, traits)
        index_person(conn, person_id, json_profile(row["profile"]))
        record(conn, "create", person_id, cause, detail={"traits": traits_dict(traits)})
    if identifier is not None:
        link(conn, identifier, person_id, cause, take=False)
    return person_id


_GIVE = text(f"""
INSERT INTO id_identifiers (domain, value, person_id, linked_at)
SELECT :d, :v, id, :at FROM id_persons WHERE id = :p AND status = '{ACTIVE}'""")


def give(conn: Any, identifier: LocalIdentifier, person_id: int, cause: str,
         detail: dict | None = None) -> None:
    """Give ``identifier``, which the caller found free, to the active person ``person_id``.

    Held now (another transaction gave it meanwhile): the identifier's unique key refuses
    it (IntegrityError) and :func:`identity.store.deferred.in_transaction` runs the whole
    operation again. A person merged away or missing: IdentityError naming it.
    """
    domain = identifier.domain
    values = {"d": domain.oid, "v": identifier.value, "p": person_id, "at": time.time(),
              "namespace": domain.namespace, "id_type": domain.id_type,
              "cause": check_cause(cause), "detail": event_detail(detail)}
    if conn.dialect.name == "postgresql":
        given = conn.execute(pg_writes.GIVE, values).rowcount
    else:
        ensure_domain(conn, identifier)
        given = conn.execute(_GIVE, values).rowcount
        if given:
            record(conn, "link", person_id, cause, identifier=(domain.oid, identifier.value),
                   detail=detail)
    if not given:
        active_person(conn, person_id)  # raises, naming why
        raise IdentityError(f"person {person_id} did not take {identifier.value}")


def _create_in_one(conn: Any, row: dict[str, Any], traits: Traits, cause: str,
                   now: float) -> int:
    """:func:`create_person`'s rows in one PostgreSQL statement (:data:`pg_writes.CREATE`)."""
    names = name_rows(0, traits)
    p = json_profile(row["profile"])
    return conn.execute(pg_writes.CREATE, {
        **row, "at": now, "cause": cause, "detail": event_detail({"traits": traits_dict(traits)}),
        "name_kinds": [n["kind"] for n in names], "name_folded": [n["folded"] for n in names],
        "keys": list(dict.fromkeys(blocking_keys(p))), "counts": count_names(p)}).scalar_one()


def link(conn: Any, identifier: LocalIdentifier, person_id: int, cause: str,
         detail: dict | None = None, *, take: bool = True) -> int | None:
    """Give ``identifier`` to ``person_id``, taking it from its holder if any; the former holder.

    ``take=False`` is for an identifier the caller found free (:func:`give`): None.
    """
    if not take:
        give(conn, identifier, person_id, cause, detail)
        return None
    active_person(conn, person_id)
    former = owner(conn, identifier)
    if former == person_id:
        return former
    key = (identifier.domain.oid, identifier.value)
    if former is None:
        ensure_domain(conn, identifier)
        conn.execute(id_identifiers.insert(), {
            "domain": key[0], "value": key[1], "person_id": person_id, "linked_at": time.time()})
    else:
        _move(conn, key, person_id)
    record(conn, "link", person_id, cause, other=former, identifier=key, detail=detail)
    return former


def _move(conn: Any, key: tuple[str, str], person_id: int) -> None:
    conn.execute(_MOVE, {"d": key[0], "v": key[1], "person_id": person_id, "linked_at": time.time()})


def unlink(conn: Any, identifier: LocalIdentifier, cause: str) -> int:
    """Detach ``identifier`` from its person onto a new person with the same traits; its id.

    Unlinking says the two are different persons: the pair is rejected, so that the new
    person's next trait change does not propose the old one again.
    """
    former = owner(conn, identifier)
    if former is None:
        raise IdentityError(f"identifier {identifier.value} in {identifier.domain.oid} is not linked")
    new = create_person(conn, traits_of(conn, former), cause)
    key = (identifier.domain.oid, identifier.value)
    _move(conn, key, new)
    reject_pair(conn, former, new, cause)
    record(conn, "unlink", former, cause, other=new, identifier=key)
    return new


def change_identifier(conn: Any, old: LocalIdentifier, new: LocalIdentifier, cause: str) -> int:
    """Replace ``old`` by ``new`` on the person holding ``old``; that person.

    The caller has checked that ``new`` is free or already this person's (then ``old``
    is only dropped). The event names ``new`` and keeps ``old`` in its detail.
    """
    person_id = owner(conn, old)
    if person_id is None:
        raise IdentityError(f"identifier {old.value} in {old.domain.oid} is not linked")
    old_key = {"d": old.domain.oid, "v": old.value}
    if owner(conn, new) is None:
        ensure_domain(conn, new)
        conn.execute(_RENAME, {**old_key, "nd": new.domain.oid, "nv": new.value, "at": time.time()})
    else:
        conn.execute(_DROP, old_key)
    record(conn, "change", person_id, cause, identifier=(new.domain.oid, new.value),
           detail={"old": [old.domain.oid, old.value]})
    return person_id


# a known person's traits and status in one statement: the commonest read of a resolution
# (an ADT for a patient already known, its traits unchanged)
_STATUS_AND_TRAITS = (select(id_persons.c.status, id_traits)
                      .join(id_traits, id_traits.c.person_id == id_persons.c.id)
                      .where(id_persons.c.id == bindparam("id")))


def update_traits(conn: Any, person_id: int, traits: Traits, cause: str) -> bool:
    """Replace a person's traits (re-indexing it); False when nothing changed."""
    found = conn.execute(_STATUS_AND_TRAITS, {"id": person_id}).first()
    if found is None:  # no person, or no traits: the error names which
        person_row(conn, person_id)
        traits_of(conn, person_id)
    before = row_traits(found._mapping)
    if before == traits:
        return False
    row = traits_row(traits)
    if found.status == ACTIVE:
        unindex_person(conn, person_id, profile(before))
        index_person(conn, person_id, json_profile(row["profile"]))
    conn.execute(update(id_traits).where(id_traits.c.person_id == person_id).values(**row))
    forget_names(conn, person_id)
    index_names(conn, person_id, traits)
    conn.execute(update(id_persons).where(id_persons.c.id == person_id).values(updated_at=time.time()))
    record(conn, "traits", person_id, cause,
           detail={"before": traits_dict(before), "after": traits_dict(traits)})
    return True


_IDENTIFIERS = select(id_identifiers.c.domain, id_identifiers.c.value).where(
    id_identifiers.c.person_id == bindparam("p")).order_by(id_identifiers.c.domain,
                                                           id_identifiers.c.value)


def identifiers_of(conn: Any, person_id: int) -> list[tuple[str, str]]:
    """(domain OID, value) of a person's identifiers, sorted."""
    rows = conn.execute(_IDENTIFIERS, {"p": person_id})
    return [(row.domain, row.value) for row in rows]
