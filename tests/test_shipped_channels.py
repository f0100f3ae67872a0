"""
The configuration shipped in ``config/`` loads, and its sample channels do to the sample
messages what docs/channels.md ("Sample channels") and samples/README.md say.

The YAML fixtures of config/fixtures/ pin each channel's output case by case; this module
checks the shipped whole from outside: ``check-config`` accepts it, every channel listens
where the docs say, and each sample message of a channel ends in the status its README line
promises, with what the practice system relies on (INS first only when qualified, no
Z-segment, the document typed in LOINC).

test-case-name: tests.test_shipped_channels
"""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine import status as st
from engine.app import channel_plan, load_config
from engine.cli.main import main
from engine.flow.decision import decide
from engine.flow.plan import InboundMessage
from mappings.message import HL7Message
from mappings.paths import get, parse_path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "engine.yaml"
PORTS = {"adt-in": 2575, "oru-lab": 2576, "adt-pam-fr": 2577, "mdm-docs": 2578, "mpi": 2579}


@pytest.fixture(scope="module")
def plans() -> dict:
    return {channel.name: channel_plan(channel) for channel in load_config(str(CONFIG)).channels}


def run(plan, sample: str):
    raw = (ROOT / "samples" / sample).read_bytes()
    result = decide(plan, InboundMessage(1, raw.decode("utf-8"), raw=raw,
                                          charset="UNICODE UTF-8"))
    payloads = {d.destination: HL7Message.parse((d.payload or raw).decode("utf-8"))
                for d in result.deliveries}
    return result, payloads


def value(message: HL7Message, path: str) -> str:
    found = get(message, parse_path(path))
    return found[0] if found else ""


def test_check_config_accepts_the_shipped_configuration(monkeypatch) -> None:
    """If `aiguillage check-config` runs in a fresh clone, then it loads every channel."""
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["check-config"], prog_name="aiguillage",
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == ("config/engine.yaml: OK (5 channel(s): adt-in, "
                                     "adt-pam-fr, mdm-docs, mpi, oru-lab)")


def test_each_channel_listens_on_loopback_where_the_docs_say() -> None:
    """If the shipped channels start, then each listens on 127.0.0.1 on its own port and
    writes files only (no peer needed for `make run`)."""
    channels = {c.name: c for c in load_config(str(CONFIG)).channels}
    assert {name: c.source.options["port"] for name, c in channels.items()} == PORTS
    for channel in channels.values():
        assert channel.source.options["host"] == "127.0.0.1"
        assert {d.connector.type_name for d in channel.destinations} == {"file"}


def test_the_pam_fr_channel_compiles_its_mapping_files_inline() -> None:
    """If adt-pam-fr loads, then its steps come from both mapping files and its tables
    from the included one."""
    channel = next(c for c in load_config(str(CONFIG)).channels if c.name == "adt-pam-fr")
    files = {Path(step.file).name for step in channel.steps.steps}
    assert files == {"pam-fr-to-practice.yaml", "pid3-ins-then-ipp.yaml"}
    assert set(channel.tables) == {"sex-hl7-to-practice", "pam-fr-movement-action"}


ADT = {
    "a01-admission.hl7": st.TRANSFORMED,
    "a02-transfer.hl7": st.FILTERED,
    "a03-discharge.hl7": st.TRANSFORMED,
    "a04-registration-no-ins.hl7": st.TRANSFORMED,
    "a11-cancel-admission.hl7": st.TRANSFORMED,
    "a31-identity-recup.hl7": st.TRANSFORMED,
    "a40-merge.hl7": st.TRANSFORMED,
}


def test_every_pam_fr_sample_has_its_expected_status() -> None:
    assert {p.name for p in (ROOT / "samples" / "adt-pam-fr").iterdir()} == set(ADT)


@pytest.mark.parametrize("name", sorted(ADT))
def test_pam_fr_sample_reaches_the_practice_as_promised(plans, name: str) -> None:
    """If a PAM France sample goes through adt-pam-fr, then a transfer is FILTERED and the
    others reach the practice with PID-3 = [qualified INS,] IPP and no Z-segment."""
    source = HL7Message.parse((ROOT / "samples" / "adt-pam-fr" / name).read_bytes()
                              .decode("utf-8"))
    result, payloads = run(plans["adt-pam-fr"], f"adt-pam-fr/{name}")
    assert result.status == ADT[name], result.error or result.detail
    if result.status != st.TRANSFORMED:
        assert payloads == {}
        return
    out = payloads["practice"]
    ids = out.segment("PID").repetitions(3)
    qualified = value(source, "PID-32") == "QUAL"
    ins = [i for i in get(source, parse_path("PID-3[*].1"))
           if len(i) == 15 and i.isdigit()]
    expected = ins + [value(source, "PID-3[1].1")] if qualified else [value(source, "PID-3.1")]
    assert [r.split("^")[0] for r in ids] == expected
    assert [r.split("^")[4] for r in ids] == (["INS", "PI"] if qualified else ["PI"])
    assert not [s for s in out.to_text().split("\r") if s.startswith("Z")]
    assert value(out, "MSH-5") == "LGC"
    assert value(out, "PID-8") in ("H", "F", "I")


MDM = {
    "t02-document.hl7": (st.TRANSFORMED, "11490-0", "CRH"),
    "t02-cda-consultation.hl7": (st.TRANSFORMED, "11488-4", "CRCONS"),
    "t02-dictated.hl7": (st.FILTERED, None, None),
}


@pytest.mark.parametrize("name", sorted(MDM))
def test_mdm_sample_is_typed_in_loinc_or_filtered(plans, name: str) -> None:
    """If a document sample goes through mdm-docs, then a signed one is typed in LOINC (the
    DPI's code kept as the alternate, the OBX typed alike) and a dictated one FILTERED."""
    status, loinc, local = MDM[name]
    result, payloads = run(plans["mdm-docs"], f"mdm/{name}")
    assert result.status == status, result.error or result.detail
    if status != st.TRANSFORMED:
        assert "TXA-17" in result.detail and payloads == {}
        return
    out = payloads["inbox"]
    assert (value(out, "TXA-2.1"), value(out, "TXA-2.3"), value(out, "TXA-2.4")) == \
        (loinc, "LN", local)
    assert value(out, "OBX-3.1") == loinc
    assert value(out, "OBX-5.4") == "Base64" and len(value(out, "OBX-5.5")) > 1000


@pytest.mark.parametrize("channel", ["adt-pam-fr", "mdm-docs"])
def test_the_docs_list_every_fixture_of_the_sample_channels(channel: str) -> None:
    """If a fixture is added to a sample channel, then docs/channels.md names it."""
    page = (ROOT / "docs" / "channels.md").read_text(encoding="utf-8")
    section = page.split("## Sample channels", 1)[1].split("\n## ", 1)[0]
    fixtures = sorted((ROOT / "config" / "fixtures" / channel).glob("*.yaml"))
    assert len(fixtures) >= (4 if channel == "adt-pam-fr" else 3)
    for fixture in fixtures:
        assert f"`{fixture.stem}`" in section, f"docs/channels.md does not name {fixture.name}"


def test_the_mpi_channel_feeds_the_index_and_refuses_a_merge_of_nobody() -> None:
    """If the GAM's A01 then its A40 reach mpi, then the patient is created (its journal line
    names the person) and the merge of a CHU number nobody holds is an ERROR with 204 at
    MRG-1, as the channel file says."""
    from engine.identity.hook import IdentityHook, step_settings
    from identity.hl7.step import settled
    from tests.identity.fakes import MemoryIdentityService
    import threading

    class Synchronous:
        """The in-memory index, called as the engine calls the store's (with a cause)."""

        def __init__(self) -> None:
            self.memory = MemoryIdentityService()

        def __getattr__(self, name):
            method = getattr(self.memory, name)
            return lambda *args, cause=None: settled(method(*args))

    config = load_config(str(CONFIG))
    channel = next(c for c in config.channels if c.name == "mpi")
    audits = []
    hook = IdentityHook(Synchronous(), step_settings(config.identity, channel.identity),
                        audits.append, threading.Lock())
    plan = channel_plan(channel, hook)
    assert plan.slow and plan.response.after_processing
    admitted, _ = run(plan, "adt-pam-fr/a01-admission.hl7")
    assert admitted.status == st.TRANSFORMED
    assert admitted.detail == "identity: ADT^A01: person P1 created"
    merged, _ = run(plan, "adt-pam-fr/a40-merge.hl7")
    assert (merged.status, merged.error_code, merged.error_location) == (st.ERROR, 204,
                                                                         "MRG^1^1")
    assert [(a.transaction, a.outcome) for a in audits] == [("ITI-8", "AA"), ("ITI-8", "AE")]
