"""The registry's kept objects written as text: byte for byte what lxml writes of the same
tree (the stored XML did not change when the registry stopped making elements for it)."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.xds.builders import counter_ids, submission
from xds.metadata.model import Association, Submission, copied
from xds.metadata.writing import registry_object_list, registry_object_list_bytes
from xds.registry import rows


def both(spec: Submission) -> tuple[bytes, bytes]:
    """(lxml's serialisation of the tree, the text writer's bytes), the same ids in each."""
    tree = etree.tostring(registry_object_list(spec, counter_ids()), encoding="UTF-8")
    return tree, registry_object_list_bytes(spec, counter_ids())


@pytest.mark.parametrize("spec", [
    submission(), submission(3, folder=True), Submission(),
    Submission(object_refs=["urn:uuid:7d5bb9c0-a2a6-4d1c-9f55-0b1b1f6a7b00"]),
    replace(submission(), associations=[Association("as", source="a", target="b")]),
], ids=["one document", "folder", "empty", "object ref", "association without slots"])
def test_text_is_what_lxml_writes(spec):
    """If a submission is written as text, then its bytes are lxml's of the same tree."""
    tree, text = both(spec)
    assert text == tree


_XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",),
                                  blacklist_characters="\ufffe\uffff",
                                  min_codepoint=0x9).filter(lambda c: c >= " " or c in "\t\n\r"))


@settings(max_examples=200, deadline=None)
@given(title=_XML_TEXT, value=_XML_TEXT, person=_XML_TEXT)
def test_escaping_is_lxml_s(title, value, person):
    """If values hold markup characters, quotes, tabs, line ends or any XML character, then
    the text is escaped as lxml escapes it (attributes, element text, empty strings)."""
    base = submission()
    entry = replace(base.documents[0], title=title, comments=value,
                    extra_slots={"urn:example:custom": [value, ""]},
                    authors=[replace(base.documents[0].authors[0], person=person)])
    tree, text = both(replace(base, documents=[entry]))
    assert text == tree


@pytest.mark.parametrize("bad", ["\x00", "a\x01b", "\ufffe", "\ud800"])
def test_a_string_xml_cannot_carry_is_refused(bad):
    """If a value holds a character XML cannot carry, then the text writer refuses it with
    lxml's ValueError (nothing half-written is kept)."""
    entry = replace(submission().documents[0], title=bad)
    with pytest.raises(ValueError, match="XML compatible"):
        registry_object_list_bytes(Submission(documents=[entry]))


def test_kept_object_reads_back_as_the_tree():
    """If the registry keeps a DocumentEntry, then its XML parses to the elements the tree
    writer makes (the package classification kept beside a SubmissionSet)."""
    spec = submission(folder=True)
    kept = rows.object_xml(spec.submission_sets[0], counter_ids())
    built = registry_object_list(Submission(submission_sets=spec.submission_sets), counter_ids())
    assert etree.tostring(etree.fromstring(kept)) == etree.tostring(built)


def test_copied_is_replace():
    """If a model object is copied with changes, then it equals dataclasses.replace's copy,
    the original is untouched, and a name that is no field is refused."""
    entry = submission().documents[0]
    changes = {"entry_uuid": "urn:uuid:x", "hash": ""}
    assert copied(entry, **changes) == replace(entry, **changes)
    assert entry.entry_uuid == "Document01"
    with pytest.raises(TypeError):
        copied(entry, no_such_field=1)
