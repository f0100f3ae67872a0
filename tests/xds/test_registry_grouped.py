"""Group commit of ITI-41 submissions (xds/registry/grouped.py), on SQLite and PostgreSQL:
one transaction for the group, each submission kept or refused alone, answers after the
commit."""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from tests.xds import builders
from tests.xds.registry_support import REPOSITORY
from xds.metadata import errors as codes
from xds.registry import tables
from xds.registry.grouped import GroupCommitter, Provided, provide_and_register_group
from xds.soap.documents import InlineDocument


def numbered(number: int, patient: str = builders.PATIENT):
    """A valid one-document submission with uniqueIds of its own."""
    submission = builders.submission()
    submission.submission_sets[0] = replace(submission.submission_sets[0], patient_id=patient,
                                            unique_id=f"1.2.250.1.999.2.{number}")
    submission.documents[0] = replace(submission.documents[0], patient_id=patient,
                                      unique_id=f"1.2.250.1.999.1.{number}")
    return submission


def provided(submission, document=None) -> Provided:
    document = document or InlineDocument(builders.DOCUMENT_BYTES)
    return Provided(submission, {"Document01": document}, REPOSITORY)


def stored_unique_ids(conn) -> list[str]:
    table = tables.document_entries
    return sorted(conn.execute(select(table.c.unique_id)).scalars())


def count(conn, table) -> int:
    return conn.execute(select(func.count()).select_from(table)).scalar()


class Peeking(InlineDocument):
    """A document that, when the registry reads its bytes, looks at what another connection
    sees of the registry: the group's earlier submissions must not be visible yet."""

    def __init__(self, data: bytes, engine):
        super().__init__(data)
        self.engine, self.seen = engine, None

    def read_bytes(self) -> bytes:
        with self.engine.connect() as other:
            self.seen = stored_unique_ids(other)
        return super().read_bytes()


class Unreadable(InlineDocument):
    def read_bytes(self) -> bytes:
        raise OSError("spool file vanished")


def test_one_refused_submission_leaves_the_others_stored(registry_engine):
    """If the middle submission of a group of three is refused (its patientId differs from
    its SubmissionSet's), then it alone is refused with XDSPatientIdDoesNotMatch, and the
    first and the last are stored, whole."""
    wrong = numbered(2)
    wrong.documents[0] = replace(wrong.documents[0],
                                 patient_id="111^^^&1.2.250.1.213.1.4.10&ISO^NH")
    group = [provided(numbered(1)), provided(wrong), provided(numbered(3))]
    with registry_engine.connect() as conn:
        results = provide_and_register_group(conn, group)
        assert results[0] == [] and results[2] == []
        assert [e.error_code for e in results[1]] == [codes.PATIENT_ID_DOES_NOT_MATCH]
        assert stored_unique_ids(conn) == ["1.2.250.1.999.1.1", "1.2.250.1.999.1.3"]
        assert (count(conn, tables.submission_sets), count(conn, tables.associations),
                count(conn, tables.documents)) == (2, 2, 2)


def test_a_duplicate_within_the_group_is_refused_alone(registry_engine):
    """If two submissions of one group carry the same uniqueIds, then the first is stored and
    the second is XDSDuplicateUniqueIdInRegistry: the registry's checks see the group's
    earlier submissions."""
    with registry_engine.connect() as conn:
        results = provide_and_register_group(conn, [provided(numbered(1)),
                                                    provided(numbered(1))])
        assert results[0] == []
        assert [e.error_code for e in results[1]] == [codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY]
        assert stored_unique_ids(conn) == ["1.2.250.1.999.1.1"]


def test_a_failing_submission_is_rolled_back_alone(registry_engine):
    """If storing one submission raises (its spooled document cannot be read), then the
    exception is its result, nothing of it is kept, and the others are committed."""
    group = [provided(numbered(1)),
             provided(numbered(2), Unreadable(builders.DOCUMENT_BYTES)),
             provided(numbered(3))]
    with registry_engine.connect() as conn:
        results = provide_and_register_group(conn, group)
        assert isinstance(results[1], OSError) and results[0] == results[2] == []
        assert stored_unique_ids(conn) == ["1.2.250.1.999.1.1", "1.2.250.1.999.1.3"]
        assert count(conn, tables.submission_sets) == 2


def test_the_group_is_one_transaction(registry_engine):
    """If the second submission of a group looks through another connection while it is
    being stored, then it does not see the first (not committed yet); after the group,
    both are there."""
    peeking = Peeking(builders.DOCUMENT_BYTES, registry_engine)
    with registry_engine.connect() as conn:
        results = provide_and_register_group(conn, [provided(numbered(1)),
                                                    provided(numbered(2), peeking)])
        assert results == [[], []]
        assert peeking.seen == []
        assert stored_unique_ids(conn) == ["1.2.250.1.999.1.1", "1.2.250.1.999.1.2"]


def test_group_committer_answers_each_submission_after_its_commit(registry_engine):
    """If eleven submissions are queued at once, one of them refused, then each Future holds
    its own errors, the ten distinct ones are stored, and no group holds more than
    ``max_group`` (four) of them: at least three commits."""
    committer = GroupCommitter(registry_engine, max_group=4)
    try:
        futures = [committer.submit(numbered(n),
                                    {"Document01": InlineDocument(builders.DOCUMENT_BYTES)},
                                    REPOSITORY) for n in range(10)]
        refused = committer.submit(numbered(3), {"Document01": InlineDocument(
            builders.DOCUMENT_BYTES)}, REPOSITORY)
        results = [future.result(timeout=60) for future in futures]
        assert results == [[]] * 10
        assert [e.error_code for e in refused.result(timeout=60)] == [
            codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY]
    finally:
        committer.stop(timeout=60)
    assert 3 <= committer.groups <= 11  # 11 submissions, at most 4 a group
    with registry_engine.connect() as conn:
        assert len(stored_unique_ids(conn)) == 10


def test_group_committer_needs_a_positive_group():
    with pytest.raises(ValueError, match="max_group"):
        GroupCommitter(None, max_group=0)
    with pytest.raises(ValueError, match="threads"):
        GroupCommitter(None, threads=0)


def test_several_writers_store_each_once_and_refuse_a_race(registry_engine):
    """If writers sharing the queue lost or doubled a submission, or two of them racing for
    one uniqueId both stored it, then the counts or the answers would differ."""
    committer = GroupCommitter(registry_engine, max_group=2, threads=3)
    try:
        futures = [committer.submit(numbered(n % 12), {"Document01": InlineDocument(
            builders.DOCUMENT_BYTES)}, REPOSITORY) for n in range(24)]
        results = [future.result(timeout=60) for future in futures]
    finally:
        committer.stop(timeout=60)
    refused = [[e.error_code for e in errors] for errors in results if errors]
    assert refused == [[codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY]] * 12
    with registry_engine.connect() as conn:
        assert len(stored_unique_ids(conn)) == 12


def test_a_group_that_cannot_be_stored_fails_every_submission(tmp_path):
    """If the database cannot be opened (here its path is a directory), then every queued
    submission's Future holds that error, none is answered as stored, and the writer goes
    on serving."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError
    committer = GroupCommitter(create_engine(f"sqlite:///{tmp_path}"))
    try:
        futures = [committer.submit(numbered(n), {"Document01": InlineDocument(
            builders.DOCUMENT_BYTES)}, REPOSITORY) for n in range(3)]
        for future in futures:
            assert isinstance(future.exception(timeout=60), OperationalError)
        again = committer.submit(numbered(4), {}, REPOSITORY)
        assert isinstance(again.exception(timeout=60), OperationalError)
    finally:
        committer.stop(timeout=60)
    assert committer.groups == 0
