"""Tests for consent in a decision (engine.flow.consent through decide): an ADT's opposition
read into the decision, and shared-record destinations refused for a patient who opposed.

Pure: the store's lookup is :class:`FixedLookup`, checked against the ConsentLookup protocol;
the plans come from real channel files through the loader and engine.app.channel_plan."""
from __future__ import annotations

import textwrap

import pytest

from engine import status as st
from engine.app import channel_plan
from engine.config.loader import ConfigError, load_channel_file
from engine.flow.decision import decide
from engine.flow.plan import InboundMessage
from engine.interfaces import ConsentLookup
from engine.store.consent import SHARED_RECORD, Opposition
from engine.store.records import ConsentChange
from tests.config.test_loader import SPECS
from tests import standards


INS = "1.2.250.1.213.1.4.10"
ADT = ("MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20240309111154||ADT^A01^ADT_A01|3977|P|2.5\r"
       "PID|1||000003^^^CHU-X&1.2.250.1.999.1&ISO^PI~279035121518989^^^ASIP&" + INS +
       "&ISO^INS||PAT^DOMINIQUE\r"
       "ZFA|ACTIF|20240309111154|||||||{zfa9}|20240309111154\r")
ORU = ("MSH|^~\\&|LAB|CHU-X|DPI|CHU-X|20240309120000||ORU^R01^ORU_R01|5001|P|2.5\r"
       "PID|1||279035121518989^^^&" + INS + "&ISO^INS||PAT^DOMINIQUE\r"
       "OBX|1|NM|2345-7^GLUCOSE^LN||5.5|mmol/L\r")


class FixedLookup:
    """Answers from a dict (domain, value) -> Opposition, and records what it was asked."""

    def __init__(self, oppositions: dict | None = None):
        self.oppositions = oppositions or {}
        self.asked: list[tuple] = []

    def opposition(self, identifiers, scope):
        self.asked.append((tuple(identifiers), scope))
        for key in identifiers:
            if key in self.oppositions and self.oppositions[key].scope == scope:
                return self.oppositions[key]
        return None


def test_the_fake_lookup_matches_the_protocol():
    assert isinstance(FixedLookup(), ConsentLookup)


def channel_file(tmp_path, extra: str = "consent: {}\n", shared: str = "shared_record: true"):
    text = textwrap.dedent(f"""\
        name: adt
        source:
          type: mllp
          port: 2575
        destinations:
          - name: dpi
            type: file
            directory: dpi
          - name: dmp
            type: file
            directory: dmp
            {shared}
        """) + extra
    path = tmp_path / "adt.yaml"
    path.write_text(text)
    return load_channel_file(str(path), SPECS)


def inbound(text: str) -> InboundMessage:
    return InboundMessage(0, text, raw=text.encode(), charset="UNICODE UTF-8")


def opposed(value="279035121518989", domain=INS) -> Opposition:
    return Opposition(1, domain, value, SHARED_RECORD, 1733500000.0, "message:7", "ZFA-9 = IO")


def test_a_shared_record_destination_makes_the_plan_slow(tmp_path):
    """If a destination is the shared record, then the plan is slow (decided in a worker
    thread, where the store may be read) and not routing-only."""
    plan = channel_plan(channel_file(tmp_path, extra=""))
    assert plan.slow and plan.shares and not plan.routes_only
    assert not channel_plan(channel_file(tmp_path, extra="", shared="")).slow


def test_an_adt_opposition_is_recorded_and_keeps_the_adt_from_the_shared_record(tmp_path):
    """If the ADT's ZFA-9 says IO, then its decision carries an opposition for each PID-3
    identifier, the dpi destination gets it and the dmp destination does not, with the
    reason; the store is not even asked."""
    lookup = FixedLookup()
    plan = channel_plan(channel_file(tmp_path), consent_lookup=lookup)
    decision = decide(plan, inbound(ADT.format(zfa9="IO")))
    assert decision.status == st.TRANSFORMED
    assert [d.destination for d in decision.deliveries] == ["dpi"]
    assert decision.consent == (ConsentChange(
        (("1.2.250.1.999.1", "000003"), (INS, "279035121518989")), SHARED_RECORD, True,
        "ZFA-9 = IO"),)
    assert decision.detail == ("not sent to dmp: consent: this message records the patient's "
                               "opposition (ZFA-9 = IO)")
    assert lookup.asked == []


def test_a_patient_who_opposed_gets_nothing_in_the_shared_record(tmp_path):
    """If the store holds an opposition of the ORU's patient, then dmp gets no delivery,
    dpi does, and the journal detail names the patient, the date and the cause."""
    lookup = FixedLookup({(INS, "279035121518989"): opposed()})
    decision = decide(channel_plan(channel_file(tmp_path), consent_lookup=lookup),
                      inbound(ORU))
    assert decision.status == st.TRANSFORMED and decision.consent == ()
    assert [d.destination for d in decision.deliveries] == ["dpi"]
    assert decision.detail == (
        f"not sent to dmp: consent: patient 279035121518989^^^&{INS}&ISO opposed to "
        "shared-record since 2024-12-06T15:46:40Z (message:7; ZFA-9 = IO)")
    assert lookup.asked == [(((INS, "279035121518989"),), SHARED_RECORD)]


def test_without_opposition_every_destination_is_served(tmp_path):
    lookup = FixedLookup({(INS, "someone-else"): opposed("someone-else")})
    decision = decide(channel_plan(channel_file(tmp_path), consent_lookup=lookup),
                      inbound(ORU))
    assert [d.destination for d in decision.deliveries] == ["dpi", "dmp"]
    assert decision.detail is None


def test_a_withdrawal_in_the_message_lets_it_through_and_is_recorded(tmp_path):
    """If the ADT says INO while the store still holds an opposition, then the withdrawal
    wins for this message (it goes to dmp) and is recorded with the decision."""
    lookup = FixedLookup({(INS, "279035121518989"): opposed()})
    decision = decide(channel_plan(channel_file(tmp_path), consent_lookup=lookup),
                      inbound(ADT.format(zfa9="INO")))
    assert [d.destination for d in decision.deliveries] == ["dpi", "dmp"]
    assert [c.opposed for c in decision.consent] == [False]


def test_not_collected_changes_nothing(tmp_path):
    """If ZFA-9 is NA (not collected), then no change is recorded and the store decides."""
    decision = decide(channel_plan(channel_file(tmp_path), consent_lookup=FixedLookup()),
                      inbound(ADT.format(zfa9="NA")))
    assert decision.consent == () and len(decision.deliveries) == 2


def test_only_shared_record_destinations_all_refused_is_filtered(tmp_path):
    """If the only destination is the shared record and the patient opposed, then the
    message is FILTERED (kept) with the reason, nothing delivered."""
    path = tmp_path / "oru.yaml"
    path.write_text(textwrap.dedent("""\
        name: oru
        source: {type: mllp, port: 2575}
        destinations:
          - {name: dmp, type: file, directory: dmp, shared_record: true}
        """))
    lookup = FixedLookup({(INS, "279035121518989"): opposed()})
    decision = decide(channel_plan(load_channel_file(str(path), SPECS), consent_lookup=lookup),
                      inbound(ORU))
    assert decision.status == st.FILTERED and decision.deliveries == ()
    assert decision.detail.startswith("dmp: consent: patient 279035121518989")


def test_a_lookup_that_fails_is_an_error_not_a_lost_message(tmp_path):
    """If the store cannot be read, then the message is decided ERROR naming why (kept for a
    replay), never sent to the shared record unchecked."""
    class Broken:
        def opposition(self, identifiers, scope):
            raise RuntimeError("database is locked")

    decision = decide(channel_plan(channel_file(tmp_path), consent_lookup=Broken()),
                      inbound(ORU))
    assert decision.status == st.ERROR and "database is locked" in decision.error


def test_an_engineers_own_field_and_values(tmp_path):
    """If the channel maps its own field (PV2-22 "Y"), then that field is read instead."""
    channel = channel_file(tmp_path, extra="consent:\n  opposition: PV2-22\n  values: ['Y']\n"
                                            "  withdrawn: ['N']\n")
    text = ORU.replace("OBX", "PV2" + "|" * 22 + "Y\rOBX")
    decision = decide(channel_plan(channel, consent_lookup=FixedLookup()), inbound(text))
    assert decision.consent[0].opposed and decision.consent[0].reason == "PV2-22 = Y"
    assert [d.destination for d in decision.deliveries] == ["dpi"]


@pytest.mark.parametrize("sample,opposes", [
    ("NonConsentementConsultation_OppositionAlimentation.er7", True),
    ("ConsentementConsultation_NonOppositionAlimentation.er7", False),
    ("NonRecueillieConsentementConsultation_NonRecueillieOppositionAlimentation.er7", None),
])
def test_the_ans_pam_fr_consent_samples(tmp_path, sample, opposes):
    """If the ANS samples are decided with the default consent section, then IO opposes,
    INO withdraws, NA changes nothing."""
    text = standards.sample(f"hl7v2/ans/pam-fr-consentement-dmp/{sample}").read_bytes().decode()
    decision = decide(channel_plan(channel_file(tmp_path), consent_lookup=FixedLookup()),
                      inbound(text))
    assert [c.opposed for c in decision.consent] == ([] if opposes is None else [opposes])


@pytest.mark.parametrize("extra,message", [
    ("consent:\n  opposition: ZFA9\n", "consent.opposition: opposition must name a field"),
    ("consent:\n  opposition: ZFA-\n", "consent.opposition"),
    ("consent:\n  values: ['IO']\n  withdrawn: ['IO']\n", "both oppose and withdraw"),
    ("consent:\n  values: [1]\n", "list of strings"),
    ("consent:\n  oposition: ZFA-9\n", 'did you mean "opposition"'),
])
def test_a_bad_consent_section_is_refused_with_its_line(tmp_path, extra, message):
    with pytest.raises(ConfigError) as caught:
        channel_file(tmp_path, extra=extra)
    assert message in str(caught.value) and "adt.yaml:" in str(caught.value)


def test_an_xds_destination_is_the_shared_record_whatever_it_says(tmp_path):
    """If a destination is of type xds (an ITI-41 Document Source), then it is checked for
    consent even without shared_record: true."""
    from dataclasses import replace

    from engine.interfaces import ConnectorConfig

    channel = channel_file(tmp_path, extra="", shared="")
    dmp = channel.destinations[1]
    xds = replace(dmp, connector=ConnectorConfig("xds", "dmp", {}, dmp.file, dmp.line))
    plan = channel_plan(replace(channel, destinations=(channel.destinations[0], xds)),
                        consent_lookup=FixedLookup({(INS, "279035121518989"): opposed()}))
    assert [d.shared_record for d in plan.destinations] == [False, True] and plan.slow
    assert [d.destination for d in decide(plan, inbound(ORU)).deliveries] == ["dpi"]
