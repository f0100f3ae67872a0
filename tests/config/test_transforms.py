"""``transform:`` in channel files: checked at load (file and line), chained channel then
destination, applied by the decision after the steps; the CDA made validates against the CDA
schema and the submission made against the XDS.b schema."""
from __future__ import annotations

import shutil
from pathlib import Path

from lxml import etree

from engine import status as st
from engine.app import channel_plan
from engine.config.loader import load_channel_file
from engine.flow.decision import decide
from engine.flow.plan import InboundMessage
from tests.config.test_loader import SPECS, only_problem, write
from tests.xds.standards import assert_valid
from xds.transforms.payload import SUBMISSION_MEDIA_TYPE, read_payload

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SOURCE_ID = "1.2.250.1.999.1.7"
CHANNEL = """\
    name: lab
    source: {type: mllp, port: 2600}
    tables: {lab-loinc: tables/lab-loinc.csv}
    transform: {name: oru-to-cda, loinc-table: lab-loinc, custodian-oid: 1.2.250.1.999.1}
    destinations:
      - name: cda
        type: file
        directory: out
      - name: xds
        type: file
        directory: out2
        transform:
          name: cda-to-xds
          source-id: 1.2.250.1.999.1.7
          class-code: {code: "11", scheme: 1.2.250.1.213.1.1.4.1, display: Compte rendu}
          practice-setting-code: {code: LAB, scheme: 1.2.250.1.213.1.1.4.9}
          healthcare-facility-code: {code: SA01, scheme: 1.2.250.1.71.4.2.4}
"""


def lab_channel(tmp_path, text: str = CHANNEL) -> str:
    (tmp_path / "tables").mkdir(exist_ok=True)
    shutil.copy(SAMPLES / "tables" / "lab-loinc.csv", tmp_path / "tables" / "lab-loinc.csv")
    return write(tmp_path, "lab.yaml", text)


def channel_problem(tmp_path, text: str):
    return only_problem(load_channel_file, lab_channel(tmp_path, text))


def decided(tmp_path, sample: str, text: str = CHANNEL):
    channel = load_channel_file(lab_channel(tmp_path, text), SPECS)
    raw = (SAMPLES / sample).read_bytes()
    text = raw.decode("utf-8", errors="replace")
    return decide(channel_plan(channel), InboundMessage(1, text, raw=raw))


def test_channel_and_destination_transforms_chain(tmp_path):
    """If a channel names oru-to-cda and a destination cda-to-xds, then that destination's
    chain is both, the other's only the channel's, and the plan is decided off the reactor."""
    channel = load_channel_file(lab_channel(tmp_path), SPECS)
    chains = {d.name: d.transform.name for d in channel.destinations}
    assert chains == {"cda": "oru-to-cda", "xds": "oru-to-cda then cda-to-xds"}
    assert channel.transform.name == "oru-to-cda"
    assert channel.destinations[1].transform.media_type == SUBMISSION_MEDIA_TYPE
    assert channel_plan(channel).slow and not channel_plan(channel).routes_only


def test_an_oru_becomes_a_valid_cda_and_a_valid_submission(tmp_path):
    """If an ORU^R01 is decided, then one delivery carries a schema-valid CDA and the other
    an XDS.b-valid submission whose DocumentEntry the CDA header and the settings gave."""
    decision = decided(tmp_path, "oru/r01-biochemistry.hl7")
    assert decision.status == st.TRANSFORMED, decision.error
    payloads = {d.destination: d.payload for d in decision.deliveries}
    assert decision.detail == ("cda: oru-to-cda -> text/xml; "
                               "xds: oru-to-cda then cda-to-xds -> application/xds-pnr+xml")
    cda = etree.fromstring(payloads["cda"])
    assert_valid("cda", cda)
    assert_valid("xdsb", etree.fromstring(payloads["xds"]))
    read = read_payload(payloads["xds"])
    entry = read.submission.documents[0]
    assert read.documents[entry.entry_uuid] == payloads["cda"]
    assert (entry.class_code.code, entry.practice_setting_code.code,
            entry.healthcare_facility_type_code.code) == ("11", "LAB", "SA01")
    # PID-32 is VALI, not QUAL: the INS is not shared, the local identifier is
    assert entry.patient_id == "00451203^^^&1.2.250.1.999.1.1&ISO"
    assert read.submission.submission_set.source_id == SOURCE_ID


def test_a_message_the_transform_refuses_is_an_error_naming_it(tmp_path):
    """If an ADT reaches an oru-to-cda channel, then it is ERROR naming the transform."""
    decision = decided(tmp_path, "adt/a01-admission.hl7")
    assert decision.status == st.ERROR
    assert "transform 'oru-to-cda'" in decision.error


def test_mdm_to_xds_makes_a_submission(tmp_path):
    """If an MDM^T02 carrying a PDF goes through mdm-to-xds, then the delivery is a
    submission holding the decoded document."""
    text = CHANNEL.replace("transform: {name: oru-to-cda, loinc-table: lab-loinc, "
                           "custodian-oid: 1.2.250.1.999.1}",
                           f"transform: {{name: mdm-to-xds, source-id: {SOURCE_ID}}}")
    text = text[:text.index("        transform:\n          name: cda-to-xds")]
    decision = decided(tmp_path, "mdm/t02-document.hl7", text)
    assert decision.status == st.TRANSFORMED, decision.error
    read = read_payload(decision.deliveries[0].payload)
    entry = read.submission.documents[0]
    assert entry.mime_type == "application/pdf"
    assert read.documents[entry.entry_uuid].startswith(b"%PDF")


def test_unknown_transform_is_reported_at_its_line(tmp_path):
    """If a channel names a transform that does not exist, then the load names it, the
    known ones, and the file and line of ``transform:``."""
    problem = channel_problem(tmp_path, CHANNEL.replace("name: oru-to-cda", "name: oru-to-pdf"))
    assert (problem.line, problem.field) == (4, "transform")
    assert "unknown transform 'oru-to-pdf'" in problem.message
    assert "cda-to-xds" in problem.message and "mdm-to-xds" in problem.message


def test_bad_metadata_settings_are_reported(tmp_path):
    """If cda-to-xds has no source-id and a code without scheme, then both are reported at
    the destination's transform line."""
    text = CHANNEL.replace("          source-id: 1.2.250.1.999.1.7\n", "").replace(
        "scheme: 1.2.250.1.213.1.1.4.9", "display: Labo")
    problem = channel_problem(tmp_path, text)
    assert (problem.line, problem.field) == (12, "destinations[1].transform")
    assert "source-id is missing" in problem.message
    assert "practice-setting-code must be a mapping with code and scheme" in problem.message


def test_a_transform_given_what_it_does_not_take_is_refused(tmp_path):
    """If cda-to-xds is named on a channel without oru-to-cda before it, then the load says
    it takes a CDA but would be given the HL7 v2 message."""
    text = CHANNEL.replace("    transform: {name: oru-to-cda, loinc-table: lab-loinc, "
                           "custodian-oid: 1.2.250.1.999.1}\n", "")
    problem = channel_problem(tmp_path, text)
    assert (problem.line, problem.field) == (11, "destinations[1].transform"), str(problem)
    assert "takes a text/xml document, but it would be given the HL7 v2 message" \
        in problem.message


def test_the_channel_transform_runs_once_per_message():
    """If two destinations share the channel's transform, then it runs once per message,
    and each destination's own transform runs on what it made."""
    from engine.flow.plan import ChannelPlan, DestinationPlan
    from mappings.transforms.chain import chain
    from mappings.transforms.registry import MessageTransform

    calls = []
    shared = MessageTransform("count", "text/plain",
                              lambda message: calls.append(1) or b"made")
    upper = MessageTransform("upper", "text/plain", lambda data: data.upper(),
                             accepts="text/plain")
    plan = ChannelPlan("lab", (DestinationPlan("a", transform=chain(shared)),
                               DestinationPlan("b", transform=chain(shared, upper))))
    raw = b"MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5\rPID|1||X\r"
    decision = decide(plan, InboundMessage(1, raw.decode(), raw=raw))
    assert [d.payload for d in decision.deliveries] == [b"made", b"MADE"]
    assert len(calls) == 1
