"""
The commonest writes of a resolution as one PostgreSQL statement each.

On PostgreSQL every statement is a round trip, and a resolution's wait is mostly round trips:
creating a person is seven statements (person, traits, names, blocking keys, counts, event,
identifier) and giving it a free identifier three (domain, identifier, event). Here each is
one statement of data-modifying CTEs, its lists bound as arrays so that its text never
changes and psycopg prepares it once per connection. SQLite, in-process, runs the same
writes as separate statements (:mod:`identity.store.persons`); both write the same rows,
which the store tests check on both databases.

test-case-name: tests.identity.store.test_service
"""
from __future__ import annotations

from sqlalchemy import text

from identity.store.schema import ACTIVE, id_traits

# the identifier, only if the person is active; its event, only if the identifier was given
GIVE = text(f"""
WITH domain AS (
    INSERT INTO id_domains (oid, namespace, id_type) VALUES (:d, :namespace, :id_type)
    ON CONFLICT DO NOTHING),
given AS (
    INSERT INTO id_identifiers (domain, value, person_id, linked_at)
    SELECT :d, :v, id, :at FROM id_persons WHERE id = :p AND status = '{ACTIVE}'
    RETURNING person_id)
INSERT INTO id_events (at, kind, person_id, other_person_id, domain, value, cause, detail)
SELECT :at, 'link', person_id, NULL, :d, :v, :cause, :detail FROM given""")

TRAIT_COLUMNS = tuple(c.name for c in id_traits.columns if c.name != "person_id")

# a new active person, its traits, names, blocking keys, its share of the counts and its
# create event; the person's id. The count names of one person are distinct, so that the
# upsert touches each row once.
CREATE = text(f"""
WITH person AS (
    INSERT INTO id_persons (status, created_at, updated_at) VALUES ('{ACTIVE}', :at, :at)
    RETURNING id),
traits AS (
    INSERT INTO id_traits (person_id, {", ".join(TRAIT_COLUMNS)})
    SELECT id, {", ".join(":" + c for c in TRAIT_COLUMNS)} FROM person),
names AS (
    INSERT INTO id_names (kind, folded, person_id)
    SELECT n.kind, n.folded, person.id FROM person,
        unnest(CAST(:name_kinds AS varchar[]), CAST(:name_folded AS varchar[])) AS n(kind, folded)),
keys AS (
    INSERT INTO id_blocking_keys (key, person_id)
    SELECT k.key, person.id FROM person, unnest(CAST(:keys AS varchar[])) AS k(key)),
counts AS (
    INSERT INTO id_counts (name, value)
    SELECT c.name, 1 FROM unnest(CAST(:counts AS varchar[])) AS c(name)
    ON CONFLICT (name) DO UPDATE SET value = id_counts.value + 1),
event AS (
    INSERT INTO id_events (at, kind, person_id, other_person_id, domain, value, cause, detail)
    SELECT :at, 'create', id, NULL, NULL, NULL, :cause, :detail FROM person)
SELECT id FROM person""")
