"""
The master patient index's tables, on the engine store's MetaData.

They sit on :data:`engine.store.schema.metadata` so that one Alembic history
(``engine/store/migrations``, revision 0006) creates them and the migration
test compares the database with everything the code reads.

* ``id_domains``: identifier domains (assigning authorities), by OID.
* ``id_persons``: one row per person; a person merged into another keeps its
  row (``merged_into``) so that the merge can be undone.
* ``id_identifiers``: a local identifier (domain, value) belongs to one person.
* ``id_traits``: the person's current traits as received, their INS and PID-32
  status, and the normalised profile the matcher compares (JSON), computed once.
* ``id_blocking_keys``: key -> person, the candidate lookup (active persons only).
* ``id_counts``: how many active persons, and per normalised family name, first
  name and birth place: the frequency weighing, without a COUNT(*) per query.
* ``id_events``: every link, unlink, merge, unmerge, trait change and review
  decision, with its cause (``message:<id>`` or ``operator:<name>``).
* ``id_review``: the review queue; ``id_rejected_pairs``: pairs a reviewer
  said are two persons, never proposed again. An item opened by a sender's own
  doubt (``review_reasons``) with nobody to propose has no candidate.
* ``id_names``: every family name (birth and used) and first name of a person,
  folded (:func:`identity.matching.normalise.fold`), for the PDQ search by name
  start: a range on the primary key, not a scan. Bytewise ordering (``C``
  collation on PostgreSQL) so that the range ``[prefix, prefix + "~")`` is
  exactly the names starting with the prefix.
* ``id_audit``: every identity query, disclosure and feed (ITI-8, 9, 21), as
  :class:`identity.hl7.audit.AuditRecord` says.

Revisions 0006 (the index) and 0008 (``id_names``, ``id_audit``, a review item
without candidate) create them.

test-case-name: tests.identity.store.test_service
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, String, Table, Text

from engine.store.schema import ID, metadata

ACTIVE, MERGED = "active", "merged"

id_domains = Table(
    "id_domains", metadata,
    Column("oid", String(64), primary_key=True),
    Column("namespace", String(64), nullable=False, server_default=""),
    Column("id_type", String(16), nullable=False, server_default="PI"),
)

id_persons = Table(
    "id_persons", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("status", String(16), nullable=False),  # active | merged
    Column("merged_into", BigInteger, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

id_identifiers = Table(
    "id_identifiers", metadata,
    Column("domain", String(64), primary_key=True),
    Column("value", String(64), primary_key=True),
    Column("person_id", BigInteger, nullable=False),
    Column("linked_at", Float, nullable=False),
)
Index("ix_id_identifiers_person", id_identifiers.c.person_id)

id_traits = Table(
    "id_traits", metadata,
    Column("person_id", BigInteger, primary_key=True, autoincrement=False),
    Column("birth_name", String(128), nullable=True),
    Column("used_name", String(128), nullable=True),
    Column("first_names", String(255), nullable=True),  # JSON list, in order
    Column("birth_date", String(8), nullable=True),
    Column("sex", String(1), nullable=False),
    Column("birth_place", String(16), nullable=True),
    Column("address", String(255), nullable=True),
    Column("postcode", String(16), nullable=True),
    Column("city", String(128), nullable=True),
    Column("phone", String(32), nullable=True),
    Column("ins", String(15), nullable=True),
    Column("ins_domain", String(64), nullable=True),
    Column("ins_status", String(8), nullable=True),  # PID-32: PROV, RECUP, VALI, QUAL
    Column("family_norm", String(128), nullable=False),
    Column("profile", Text, nullable=False),
)
Index("ix_id_traits_ins", id_traits.c.ins)
Index("ix_id_traits_family", id_traits.c.family_norm, id_traits.c.birth_date)
Index("ix_id_traits_birth_date", id_traits.c.birth_date)

id_blocking_keys = Table(
    "id_blocking_keys", metadata,
    Column("key", String(160), primary_key=True),
    Column("person_id", BigInteger, primary_key=True, autoincrement=False),
)
Index("ix_id_blocking_keys_person", id_blocking_keys.c.person_id)

id_counts = Table(
    "id_counts", metadata,
    Column("name", String(200), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

id_events = Table(
    "id_events", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("person_id", BigInteger, nullable=False),
    Column("other_person_id", BigInteger, nullable=True),
    Column("domain", String(64), nullable=True),
    Column("value", String(64), nullable=True),
    Column("cause", String(255), nullable=False),
    Column("detail", Text, nullable=True),  # JSON
)
Index("ix_id_events_person", id_events.c.person_id)
Index("ix_id_events_other", id_events.c.other_person_id)

id_review = Table(
    "id_review", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("person_id", BigInteger, nullable=False),  # the identity that came in
    Column("candidate_id", BigInteger, nullable=True),  # the person it may be (None: none found)
    Column("score", Float, nullable=True),
    Column("reasons", String(255), nullable=False),
    Column("status", String(16), nullable=False),  # open | accepted | rejected | linked | closed
    Column("opened_at", Float, nullable=False),
    Column("cause", String(255), nullable=False),
    Column("decided_at", Float, nullable=True),
    Column("decided_by", String(255), nullable=True),
)
Index("ix_id_review_status", id_review.c.status, id_review.c.id)
Index("ix_id_review_person", id_review.c.person_id)
Index("ix_id_review_candidate", id_review.c.candidate_id)

id_rejected_pairs = Table(
    "id_rejected_pairs", metadata,
    Column("low", BigInteger, primary_key=True, autoincrement=False),
    Column("high", BigInteger, primary_key=True, autoincrement=False),
    Column("at", Float, nullable=False),
    Column("cause", String(255), nullable=False),
)

FAMILY, GIVEN = "F", "G"
FOLDED = String(128).with_variant(String(128, collation="C"), "postgresql")

id_names = Table(
    "id_names", metadata,
    Column("kind", String(1), primary_key=True),  # F: birth or used name, G: a first name
    Column("folded", FOLDED, primary_key=True),
    Column("person_id", BigInteger, primary_key=True, autoincrement=False),
)
Index("ix_id_names_person", id_names.c.person_id, id_names.c.kind, id_names.c.folded)

id_audit = Table(
    "id_audit", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("recorded_at", Float, nullable=False),
    Column("transaction", String(16), nullable=False),  # ITI-8, ITI-9, ITI-21
    Column("answered_at", Text, nullable=False),  # the answer's MSH-7, as written
    Column("requester", Text, nullable=False),  # MSH-3 of the query
    Column("facility", Text, nullable=False),  # MSH-4
    Column("peer", Text, nullable=False),
    Column("control_id", Text, nullable=False),  # MSH-10
    Column("query_tag", Text, nullable=False),  # QPD-2
    Column("parameters", Text, nullable=False),  # QPD-3… as written; the event for a feed
    Column("outcome", String(8), nullable=False),  # QAK-2, or MSA-1 for a feed
    Column("persons", Text, nullable=False),  # JSON list of person ids disclosed or changed
    Column("identifiers", Text, nullable=False),  # JSON list of [domain OID, value] disclosed
)
Index("ix_id_audit_transaction", id_audit.c.transaction, id_audit.c.id)
