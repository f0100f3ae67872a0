"""Tests for mappings.groups and the group paths of mappings.paths, steps and conditions."""
from __future__ import annotations

import pytest

from mappings.expressions import ExpressionError, compile_expression
from mappings.groups import Group, root, structure_of
from mappings.message import HL7Message
from mappings.paths import PathError, delete, expand, get, parse_path, set_value
from mappings.steps import StepFailure, StepsError, compile_filters, compile_steps
from tests.standards import standards_dir

ORU = "\r".join([
    "MSH|^~\\&|SIL|LABO|AIG|CHU|20240312101522||ORU^R01|C1|P|2.5",
    "PID|1||451203^^^CHU^PI||GARNIER^Helene",
    "PV1|1|I|CARD",
    "ORC|RE|CMD1",
    "OBR|1|CMD1||BIO^Biochimie^L",
    "NTE|1|L|note of the first order",
    "OBX|1|NM|GLY^Glycemie^L||6.8",
    "NTE|1|L|note of GLY",
    "OBX|2|NM|NA^Sodium^L||138",
    "ORC|RE|CMD2",
    "OBR|2|CMD2||HEMA^Hematologie^L",
    "OBX|1|NM|HB^Hemoglobine^L||12.1",
    "ZLB|local",
]) + "\r"


def message(text: str = ORU) -> HL7Message:
    return HL7Message.parse(text)


def values(text: str, path: str) -> list[str]:
    return get(message(text), parse_path(path))


def tree(group: Group, depth: int = 0) -> list[str]:
    """The group as indented lines: groups by name, segments by name and field 1."""
    lines = []
    for child in group.children:
        if type(child) is Group:
            lines.append("  " * depth + child.name)
            lines.extend(tree(child, depth + 1))
        else:
            lines.append("  " * depth + child.name)
    return lines


# --- placing segments ------------------------------------------------------------------------

def test_two_orders_are_placed_in_their_groups():
    """If an ORU^R01 holds two orders, then each OBR, NTE and OBX goes to its own order."""
    assert tree(root(message())) == [
        "MSH", "PATIENT_RESULT", "  PATIENT", "    PID", "    VISIT", "      PV1",
        "  ORDER_OBSERVATION", "    ORC", "    OBR", "    NTE", "    OBSERVATION", "      OBX",
        "      NTE", "    OBSERVATION", "      OBX",
        "  ORDER_OBSERVATION", "    ORC", "    OBR", "    OBSERVATION", "      OBX",
        "      ZLB"]


def test_structure_from_msh_9_3_then_event_map_then_type_event():
    """If MSH-9.3 names a structure it is used; else ADT^A08 is ADT_A01; else TYPE_EVENT."""
    def structure(msh9: str, version: str = "2.5") -> tuple[str, str]:
        return structure_of(message(f"MSH|^~\\&|A|B|C|D|2024||{msh9}|1|P|{version}\r"))
    assert structure("ADT^A08") == ("2.5", "ADT_A01")
    assert structure("ADT^A31^ADT_A05") == ("2.5", "ADT_A05")
    assert structure("MDM^T02") == ("2.5", "MDM_T02")
    assert structure("OML^O21") == ("2.5", "OML_O21")
    assert structure("ORM^O01", "9.9") == ("2.5", "ORM_O01")
    assert structure("ORU^R01", "2.3.1") == ("2.3.1", "ORU_R01")


def test_the_tree_is_built_only_for_group_paths_and_dropped_on_change():
    """If no path names a group, then no tree is built; adding a segment drops a built one."""
    m = message()
    compile_steps([{"set": "OBX[*]-8", "value": "N"}]).run(m)
    assert m.structure_cache is None
    first = root(m)
    assert root(m) is first
    m.add_segment(None, "ZZZ")
    assert m.structure_cache is None and root(m) is not first


# --- paths ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path, expected", [
    ("ORDER_OBSERVATION[2]/OBX[*]-3", ["HB"]),
    ("ORDER_OBSERVATION[1]/OBX[*]-3", ["GLY", "NA"]),
    ("ORDER_OBSERVATION[*]/OBR-4.2", ["Biochimie", "Hematologie"]),
    ("ORDER_OBSERVATION/NTE[*]-3", ["note of the first order"]),
    ("ORDER_OBSERVATION/OBSERVATION[1]/NTE-3", ["note of GLY"]),
    ("PATIENT_RESULT/ORDER_OBSERVATION[1]/OBSERVATION[2]/OBX-5", ["138"]),
    ("ORDER_OBSERVATION[3]/OBX-3", []),
    ("PATIENT_RESULT/PATIENT/PID-5", ["GARNIER"]),
    ("ORDER_OBSERVATION[2]/ZLB-1", ["local"]),
])
def test_group_paths_read(path, expected):
    """If a path names groups, then it reads inside the instances they name."""
    assert values(ORU, path) == expected


@pytest.mark.parametrize("text", [
    "ORDER_OBSERVATION[2]/OBX[*]-5", "/PATIENT_RESULT/ORDER_OBSERVATION[*]/OBR-4.1",
    "ORDER_OBSERVATION[*]", "PATIENT_RESULT/ORDER_OBSERVATION",
])
def test_group_paths_print_back(text):
    """If a group path is parsed, then it prints back as written."""
    assert str(parse_path(text)) == text


@pytest.mark.parametrize("text, column", [("OBR/OBX-5", 1), ("ORDER_OBSERVATION/obx-5", 19),
                                          ("ORDER_OBSERVATION[0]/OBX", 19)])
def test_group_path_errors(text, column):
    """If a segment stands before '/' or the rest is malformed, then PathError at its column."""
    with pytest.raises(PathError) as caught:
        parse_path(text)
    assert caught.value.column == column


def test_set_and_expand_and_delete_in_groups():
    """If a group path is written, expanded or deleted, then only its instances change."""
    m = message()
    set_value(m, parse_path("ORDER_OBSERVATION[2]/OBR-7"), "20240312")
    assert get(m, parse_path("OBR[*]-7")) == ["20240312"]
    assert [str(p) for p in expand(m, parse_path("ORDER_OBSERVATION[*]/OBX[*]-3"))] == [
        "ORDER_OBSERVATION[1]/OBX[1]-3", "ORDER_OBSERVATION[1]/OBX[2]-3",
        "ORDER_OBSERVATION[2]/OBX[1]-3"]
    delete(m, parse_path("ORDER_OBSERVATION[1]"))
    assert [s.name for s in m.segments()] == ["MSH", "PID", "PV1", "ORC", "OBR", "OBX", "ZLB"]


def test_write_into_a_missing_group_fails():
    """If a write names a group instance the message lacks, then it fails naming the group."""
    with pytest.raises(PathError, match=r"no group ORDER_OBSERVATION\[3\]"):
        set_value(message(), parse_path("ORDER_OBSERVATION[3]/OBR-7"), "x")


def test_official_sample_participations_stay_with_their_observation():
    """If the ANS lab report carries PRT segments (not in v2.5's ORU_R01), then they stay in
    the observation group they follow."""
    sample = (standards_dir() / "hl7v2" / "ans" / "oru-cr-bio-v2.1"
              / "message_ORU_CR_Bio_INIT_N1_N3.hl7")  # skips outside CI, fails under CI
    text = sample.read_text(encoding="utf-8")
    m = HL7Message.parse(text)
    assert len(get(m, parse_path("ORDER_OBSERVATION/OBSERVATION[1]/PRT[*]-4.1"))) == 4
    assert get(m, parse_path("ORDER_OBSERVATION/OBSERVATION[2]/PRT[*]-4.1")) == []


@pytest.mark.parametrize("text, path, expected", [
    ("MSH|^~\\&|A|B|C|D|2024||OML^O21|1|P|2.5\rPID|1\rORC|NW|P1\rOBR|1|P1||GLU\rORC|NW|P2\r"
     "OBR|2|P2||NA\r", "ORDER[2]/OBR-4", ["NA"]),
    ("MSH|^~\\&|A|B|C|D|2024||ORM^O01|1|P|2.5\rPID|1\rORC|NW|P1\rOBR|1|P1||GLU\rORC|NW|P2\r"
     "OBR|2|P2||NA\r", "ORDER[*]/ORC-2", ["P1", "P2"]),
    ("MSH|^~\\&|A|B|C|D|2024||MDM^T02|1|P|2.5\rEVN|T02\rPID|1\rPV1|1\rTXA|1|CN\rOBX|1|ED|A\r"
     "OBX|2|ST|B\r", "OBSERVATION[2]/OBX-3", ["B"]),
    ("MSH|^~\\&|A|B|C|D|2024||ADT^A08|1|P|2.5\rEVN|A08\rPID|1\rPV1|1\rPR1|1||P1\rPR1|2||P2\r"
     "IN1|1|I1\rIN1|2|I2\r", "INSURANCE[2]/IN1-2", ["I2"]),
])
def test_other_structures(text, path, expected):
    """If an OML, ORM, MDM or ADT message is read through its groups, then they are found."""
    assert values(text, path) == expected


# --- steps and conditions -------------------------------------------------------------------

def run(steps, text: str = ORU) -> HL7Message:
    m = message(text)
    compile_steps(steps, file="ch.yaml").run(m)
    return m


def test_for_each_order_maps_each_obx_with_its_own_obr():
    """If for-each runs over ORDER_OBSERVATION[*], then OBX paths inside are the order's own."""
    m = run([{"for-each": "ORDER_OBSERVATION[*]", "steps": [
        {"for-each": "OBX[*]", "steps": [{"set": "OBX-4", "value-from": "OBR-4.1"}]},
        {"set": "OBR-20", "value-from": "MSH-10"}]}])
    assert get(m, parse_path("OBX[*]-4")) == ["BIO", "BIO", "HEMA"]
    assert get(m, parse_path("OBR[*]-20")) == ["C1", "C1"]


def test_nested_group_loops_and_conditions():
    """If loops nest (orders, then observations) with when: on group paths, then each inner
    path is relative to the current instance."""
    m = run([{"for-each": "ORDER_OBSERVATION[*]", "when": "exists(ORDER_OBSERVATION[2])",
              "steps": [{"for-each": "OBSERVATION[*]", "when": 'OBR-4.1 == "BIO"', "steps": [
                  {"set": "OBX-8", "value": "H", "when": "exists(NTE)"}]}]}])
    assert get(m, parse_path("OBX[*]-8")) == ["H"]
    assert get(m, parse_path("ORDER_OBSERVATION[1]/OBSERVATION[1]/OBX-8")) == ["H"]


def test_absolute_path_inside_a_group_loop():
    """If a path starts with '/', then it reads the whole message even inside a group loop."""
    m = run([{"for-each": "ORDER_OBSERVATION[*]", "steps": [
        {"set": "OBR-13", "value-from": "/OBX[1]-3"}]}])
    assert get(m, parse_path("OBR[*]-13")) == ["GLY", "GLY"]


def test_delete_and_add_inside_a_group_loop():
    """If steps in a group loop delete and add segments, then later steps see the change."""
    m = run([{"for-each": "ORDER_OBSERVATION[*]", "steps": [
        {"delete": "NTE[*]"},
        {"add-segment": "NTE", "after": "OBR", "fields": {"3": "added"}},
        {"set": "NTE-4", "value-from": "OBR-4.1"}]}])
    texts = [s.text() for s in m.segments("NTE")]
    assert texts == ["NTE|||added|BIO", "NTE|1|L|note of GLY", "NTE|||added|HEMA"]


def test_failure_names_the_group_instance():
    """If a step fails inside a group loop, then the message names the concrete group."""
    with pytest.raises(StepFailure) as caught:
        run([{"for-each": "ORDER_OBSERVATION[*]", "steps": [
            {"format": "OBR-4.1", "with": "dtm-to-iso"}]}])
    assert "ORDER_OBSERVATION[1]/OBR-4.1 = 'BIO'" in str(caught.value)


def test_group_the_structure_lacks_fails_the_message():
    """If a group path is used on a message whose structure has no such group, then the step
    fails saying so (nothing is quietly skipped)."""
    adt = "MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\rPID|1\r"
    with pytest.raises(StepFailure, match="ADT_A01 has no group ORDER_OBSERVATION"):
        run([{"set": "ORDER_OBSERVATION/OBR-4", "value": "x"}], adt)
    with pytest.raises(StepFailure, match="no message structure for MSH-9 ZZZ\\^Z01"):
        run([{"delete": "PATIENT[*]", "when": "exists(PATIENT)"}],
            "MSH|^~\\&|A|B|C|D|2024||ZZZ^Z01|1|P|2.5\rPID|1\r")


def test_filters_read_groups():
    """If a filter names a group path, then it is read through the message's groups."""
    program = compile_filters(['ORDER_OBSERVATION[2]/OBR-4.1 == "HEMA"'])
    assert not program.run(message()).stopped
    assert program.run(message(ORU.replace("HEMA^", "CHEM^"))).stopped


def test_unknown_group_name_refused_at_load():
    """If a path names a group no structure has, then the load fails with a did-you-mean."""
    with pytest.raises(StepsError) as caught:
        compile_steps([{"for-each": "ORDER_OBSERVATIONS[*]", "steps": []}], file="ch.yaml")
    assert "ORDER_OBSERVATIONS is not a group of any HL7 v2 message structure " \
           "(did you mean ORDER_OBSERVATION?)" in str(caught.value)


def test_for_each_over_a_field_in_a_group_refused():
    """If for-each names a field's repetitions through a group, then the load says what to do."""
    with pytest.raises(StepsError, match="loop over the group, then over the field"):
        compile_steps([{"for-each": "ORDER_OBSERVATION[1]/OBR-4[*]", "steps": []}])


@pytest.mark.parametrize("text", ["exists(ORDER_OBSERVATION[2])",
                                  'PATIENT_RESULT/ORDER_OBSERVATION[*]/OBX[*]-3 == "HB"',
                                  '/OBX[1]-3 == "GLY"'])
def test_condition_group_paths(text):
    """If a condition names group paths, then they are read as one path token each."""
    expression = compile_expression(text)
    m = message()
    assert expression.evaluate(
        lambda path: (lambda p: [g for g in get(m, p)] if p.field else ["x"])(parse_path(path)))


def test_condition_segment_before_slash_refused():
    """If a condition puts a segment before '/', then the error says only groups go there."""
    with pytest.raises(ExpressionError, match="only groups stand before"):
        compile_expression('OBR/OBX-3 == "x"')
