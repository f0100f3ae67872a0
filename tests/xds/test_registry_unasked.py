"""A submission the endpoint has validated is stored without asking the registry first
(provide_and_register_checked): the unique constraints refuse a uniqueId taken, and the
answer is then the checked path's, error code and all, with nothing of it kept; on SQLite
and PostgreSQL."""
from __future__ import annotations

from tests.dbs import migrated_engine
from tests.xds import builders
from tests.xds.test_registry_register import codes_of, counts
from xds.metadata import errors as codes
from xds.registry.register import provide_and_register_checked
from xds.soap.documents import InlineDocument

REPOSITORY = "1.2.250.1.999.7.1"


def provide_checked(conn, submission=None, data=builders.DOCUMENT_BYTES):
    submission = submission or builders.submission()
    documents = {d.entry_uuid: InlineDocument(data) for d in submission.documents}
    return provide_and_register_checked(conn, submission, documents, REPOSITORY)


def test_a_new_submission_runs_no_select(tmp_path):
    """If a validated submission holds nothing the registry has, then it is stored with its
    inserts alone: no SELECT asks first (the constraints answer for uniqueIds). On SQLite
    only: the statements run on the DBAPI cursor, which sqlite3 alone lets a test trace."""
    with migrated_engine("sqlite", tmp_path) as engine:
        _inserts_without_select(engine)


def _inserts_without_select(registry_engine) -> None:
    statements: list[str] = []
    with registry_engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        raw.set_trace_callback(lambda sql: statements.append(sql.lstrip().split()[0].upper()))
        try:
            assert provide_checked(conn) == []
        finally:
            raw.set_trace_callback(None)
        assert counts(conn)["xds_document_entries"] == 1
    assert "INSERT" in statements
    assert "SELECT" not in statements


def test_twice_is_a_duplicate_and_nothing_of_it_is_kept(registry_engine):
    """If the same validated submission comes twice, then the second is
    XDSDuplicateUniqueIdInRegistry and every table holds the first alone."""
    with registry_engine.connect() as conn:
        assert provide_checked(conn) == []
        before = counts(conn)
        assert codes_of(provide_checked(conn)) == [codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY]
        assert counts(conn) == before


def test_a_document_unique_id_with_other_bytes_is_a_non_identical_hash(registry_engine):
    """If a new SubmissionSet carries a registered document uniqueId with other bytes, then
    the answer names the hash (XDSNonIdenticalHash), as the checked path does; the new
    SubmissionSet, inserted before the document's refusal, is not kept."""
    with registry_engine.connect() as conn:
        assert provide_checked(conn) == []
        other = builders.submission()
        other.submission_sets[0].unique_id += ".3"
        other.documents[0] = builders.document_entry(data=b"other bytes")
        assert codes_of(provide_checked(conn, other, b"other bytes")) == [
            codes.NON_IDENTICAL_HASH]
        assert counts(conn)["xds_submission_sets"] == 1


def test_a_folder_unique_id_taken_is_a_duplicate(registry_engine):
    """If a validated submission's Folder uniqueId is registered, then it is refused with
    XDSDuplicateUniqueIdInRegistry naming the Folder."""
    with registry_engine.connect() as conn:
        assert provide_checked(conn, builders.submission(folder=True)) == []
        again = builders.submission(folder=True)
        again.submission_sets[0].unique_id += ".2"
        again.documents[0].unique_id += ".2"
        errors = provide_checked(conn, again)
        assert codes_of(errors) == [codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY]
        assert "Folder" in errors[0].code_context
        assert counts(conn)["xds_folders"] == 1


def test_in_a_group_a_refused_submission_leaves_the_others(registry_engine):
    """If three validated submissions share one transaction and the second's uniqueId is
    taken, then the first and third are committed and the second answered with its error."""
    first, second, third = builders.submission(), builders.submission(), builders.submission()
    second.submission_sets[0].unique_id += ".2"   # its document's uniqueId is the first's
    third.submission_sets[0].unique_id += ".3"
    third.documents[0].unique_id += ".3"
    with registry_engine.connect() as conn:
        with conn.begin():
            answers = [provide_checked(conn, s) for s in (first, second, third)]
        assert answers[0] == [] and answers[2] == []
        assert codes_of(answers[1]) == [codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY]
        assert counts(conn)["xds_submission_sets"] == 2
        assert counts(conn)["xds_documents"] == 2
