"""
Tests for engine.reload.plan: what a reload finds changed, compared on what each part was
built from. Configurations are loaded from real YAML with the real connector specs; file
digests are given by hand, as the reload's thread would have computed them.
"""
from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from engine.reload import plan as rp
from engine.app import connector_specs
from engine.config.admin import AdminConfig
from engine.config.loader import load_engine_config
from engine.reload.reloader import digest_files

SPECS = connector_specs()

ENGINE = """\
    node: n1
    store:
      url: sqlite:///var/a.db
    admin:
      port: 8026
    channels:
      - channels/*.yaml
    """

ADT = """\
    name: adt
    source:
      type: mllp
      port: 2575
    tables:
      sex: tables/sex.csv
    steps:
      - translate: PID-8
        table: sex
    destinations:
      - name: out
        type: file
        directory: out
      - name: hub
        type: mllp
        host: 127.0.0.1
        port: 2600
    """

LAB = """\
    name: lab
    source:
      type: mllp
      port: 2576
    destinations:
      - name: out
        type: file
        directory: out
    """


class Files:
    """A configuration directory: write files, load them, digest them."""

    def __init__(self, root: Path):
        self.root = root
        self.write("engine.yaml", ENGINE)
        self.write("channels/adt.yaml", ADT)
        self.write("channels/lab.yaml", LAB)
        self.write("channels/tables/sex.csv", "local,code\nM,male\nF,female\n")

    def write(self, name: str, text: str) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.root / name
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))

    def load(self) -> tuple:
        config = load_engine_config(self.root / "engine.yaml", SPECS)
        return config, digest_files(rp.input_files(config, SPECS))


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def plan_after(files: Files, change) -> rp.ReloadPlan:
    before = files.load()
    change()
    after = files.load()
    return rp.plan_reload(*before, *after, SPECS)


def by_name(plan: rp.ReloadPlan) -> dict[str, rp.ChannelChange]:
    return {change.name: change for change in plan.channels}


def test_nothing_changed(files: Files) -> None:
    """If no file changed, then every channel is unchanged and nothing needs a restart,
    although the compiled programs and tables of two loads do not compare equal."""
    plan = plan_after(files, lambda: None)
    assert [(c.name, c.kind, c.swap_plan, c.restart_source, c.stop_destinations,
             c.start_destinations) for c in plan.channels] == [
        ("adt", rp.UNCHANGED, False, False, (), ()), ("lab", rp.UNCHANGED, False, False, (), ())]
    assert plan.needs_restart == ()


def test_a_table_file_changed(files: Files) -> None:
    """If only a code table's bytes changed, then its channel's plan is swapped, its source
    and lanes are kept, and the other channel is untouched."""
    plan = by_name(plan_after(files, lambda: files.write(
        "channels/tables/sex.csv", "local,code\nM,male\nF,female\nU,unknown\n")))
    assert plan["adt"] == rp.ChannelChange("adt", rp.CHANGED, swap_plan=True)
    assert plan["lab"].kind == rp.UNCHANGED


def test_a_comment_only_swaps_the_plan(files: Files) -> None:
    """If a comment moves every line of the channel file, then the source and the lanes are
    kept: connectors are compared on their options, not on where they are written."""
    plan = by_name(plan_after(files, lambda: files.edit(
        "channels/adt.yaml", "name: adt\n", "# the hospital's ADT\n\nname: adt\n")))
    assert plan["adt"] == rp.ChannelChange("adt", rp.CHANGED, swap_plan=True)


def test_a_source_option_restarts_the_source_only(files: Files) -> None:
    plan = by_name(plan_after(files, lambda: files.edit("channels/adt.yaml", "2575", "2577")))
    assert plan["adt"] == rp.ChannelChange("adt", rp.CHANGED, swap_plan=True,
                                           restart_source=True)


def test_a_retry_policy_rebuilds_that_destination_only(files: Files) -> None:
    plan = by_name(plan_after(files, lambda: files.edit(
        "channels/adt.yaml", "    port: 2600\n", "    port: 2600\n    retry:\n"
                                                 "      max_attempts: 3\n")))
    assert plan["adt"] == rp.ChannelChange("adt", rp.CHANGED, swap_plan=True,
                                           stop_destinations=("hub",),
                                           start_destinations=("hub",))


def test_ordering_lanes_rebuild_the_destination(files: Files) -> None:
    plan = by_name(plan_after(files, lambda: files.edit(
        "channels/adt.yaml", "    port: 2600\n", "    port: 2600\n    ordering:\n"
                                                 "      key: patient\n")))
    assert (plan["adt"].stop_destinations, plan["adt"].start_destinations) == (
        ("hub",), ("hub",))


def test_destinations_added_and_removed(files: Files) -> None:
    def change() -> None:
        files.edit("channels/adt.yaml", "  - name: out\n    type: file\n    directory: out\n",
                   "  - name: copy\n    type: file\n    directory: copy\n")
    plan = by_name(plan_after(files, change))
    assert plan["adt"] == rp.ChannelChange("adt", rp.CHANGED, swap_plan=True,
                                           stop_destinations=("out",),
                                           start_destinations=("copy",))


def test_channels_added_removed_and_disabled(files: Files) -> None:
    """If a channel file appears, one disappears and one says enabled: false, then the first
    is added and the other two are removed, with all their destinations."""
    def change() -> None:
        (files.root / "channels/lab.yaml").unlink()
        files.edit("channels/adt.yaml", "name: adt\n", "name: adt\nenabled: false\n")
        files.write("channels/oru.yaml", LAB.replace("lab", "oru").replace("2576", "2580"))
    plan = by_name(plan_after(files, change))
    assert plan == {
        "adt": rp.ChannelChange("adt", rp.REMOVED, swap_plan=True, restart_source=True,
                                stop_destinations=("out", "hub")),
        "lab": rp.ChannelChange("lab", rp.REMOVED, swap_plan=True, restart_source=True,
                                stop_destinations=("out",)),
        "oru": rp.ChannelChange("oru", rp.ADDED, swap_plan=True, restart_source=True,
                                start_destinations=("out",)),
    }


def test_a_renamed_channel_is_removed_then_added(files: Files) -> None:
    plan = by_name(plan_after(files, lambda: files.edit("channels/lab.yaml", "name: lab",
                                                        "name: lab2")))
    assert (plan["lab"].kind, plan["lab2"].kind) == (rp.REMOVED, rp.ADDED)


def test_a_renewed_certificate_restarts_the_source(files: Files) -> None:
    """If a file a source's path option names changes (a renewed TLS certificate), then the
    source restarts, though its options are the same text."""
    config, digests = files.load()
    adt = config.channels[0]
    options = dict(adt.source.options, tls_cert="/tls/cert.pem", tls_key="/tls/key.pem")
    with_tls = replace(config, channels=(replace(adt, source=replace(adt.source,
                                                                     options=options)),
                                         config.channels[1]))
    assert {"/tls/cert.pem", "/tls/key.pem"} <= set(rp.input_files(with_tls, SPECS))
    old = dict(digests, **{"/tls/cert.pem": "aa", "/tls/key.pem": "bb"})
    new = dict(old, **{"/tls/cert.pem": "cc"})
    plan = by_name(rp.plan_reload(with_tls, old, with_tls, new, SPECS))
    assert plan["adt"] == rp.ChannelChange("adt", rp.CHANGED, swap_plan=True,
                                           restart_source=True)
    assert plan["lab"].kind == rp.UNCHANGED


def test_engine_settings_need_a_restart(files: Files) -> None:
    """If engine.yaml's store, node or admin listener change, then they are listed as
    needing a restart, and the running configuration keeps the old ones."""
    before = files.load()
    files.write("engine.yaml", ENGINE.replace("n1", "n2").replace("8026", "8027")
                .replace("a.db", "b.db"))
    after = files.load()
    plan = rp.plan_reload(*before, *after, SPECS)
    assert plan.needs_restart == ("store", "node", "admin")
    assert all(change.kind == rp.UNCHANGED for change in plan.channels)
    running = rp.running_config(before[0], after[0])
    assert (running.node, running.admin, running.store) == (
        "n1", AdminConfig("127.0.0.1", 8026, token_file=f"{files.root}/admin.token"),
        before[0].store)


def test_input_files(files: Files) -> None:
    """The files digested: every channel file and the tables it reads (a file
    destination's directory is named too; it digests as None)."""
    config, digests = files.load()
    root = str(files.root)
    assert sorted(path.replace(root, "") for path in rp.input_files(config, SPECS)) == [
        "/channels/adt.yaml", "/channels/lab.yaml", "/channels/out",
        "/channels/tables/sex.csv"]
    assert digests[f"{root}/channels/out"] is None
    assert digests[f"{root}/channels/adt.yaml"] is not None


def test_what_did_not_start_is_started_again(files: Files) -> None:
    """If the previous reload could not start a source or a destination's lanes, then the
    next one restarts them though no file changed."""
    before = files.load()
    plan = by_name(rp.plan_reload(*before, *before, SPECS,
                                  unfinished={("adt", None), ("lab", "out")}))
    assert plan["adt"] == rp.ChannelChange("adt", rp.CHANGED, swap_plan=True,
                                           restart_source=True)
    assert plan["lab"] == rp.ChannelChange("lab", rp.CHANGED, swap_plan=True,
                                           stop_destinations=("out",),
                                           start_destinations=("out",))


def test_an_included_mapping_file_and_its_table(files: Files) -> None:
    """If a channel includes a mapping file with a table of its own, then both files are
    inputs of the channel, and a change to either swaps its plan only."""
    files.write("mappings/pam.yaml", """\
        tables:
          sex-out: ../channels/tables/sex-out.csv
        steps:
          - translate: PID-8
            table: sex-out
        """)
    files.write("channels/tables/sex-out.csv", "local,code\nmale,M\n")
    files.edit("channels/lab.yaml", "destinations:", "steps:\n  - include: ../mappings/pam.yaml\n"
                                                    "destinations:")
    config, _ = files.load()
    lab = {c.name: c for c in config.channels}["lab"]
    assert [path.replace(str(files.root), "") for path in lab.inputs] == [
        "/mappings/pam.yaml", "/channels/tables/sex-out.csv"]
    for name, text in (("channels/tables/sex-out.csv", "local,code\nmale,H\n"),
                       ("mappings/pam.yaml", (files.root / "mappings/pam.yaml").read_text()
                        + "description: changed\n")):
        plan = by_name(plan_after(files, lambda: files.write(name, text)))
        assert (plan["lab"], plan["adt"].kind) == (
            rp.ChannelChange("lab", rp.CHANGED, swap_plan=True), rp.UNCHANGED), name


ENGINE_WITH_SHARED_RECORD = ENGINE.rstrip(" ") + """\
    shared_record:
      listen: 127.0.0.1:8090
      repository_unique_id: 1.2.250.1.999.7.1
    """


def test_shared_record_changes_need_a_restart_and_moved_lines_do_not(files: Files) -> None:
    """If the shared record's listener changed silently, or a comment above it counted as a
    change, then a reload would mislead the operator."""
    files.write("engine.yaml", ENGINE_WITH_SHARED_RECORD)
    before = files.load()
    files.write("engine.yaml", "    # a comment\n" + ENGINE_WITH_SHARED_RECORD)
    moved = files.load()
    assert rp.plan_reload(*before, *moved, SPECS).needs_restart == ()
    files.write("engine.yaml", ENGINE_WITH_SHARED_RECORD.replace("8090", "8091"))
    changed = files.load()
    assert rp.plan_reload(*before, *changed, SPECS).needs_restart == ("shared_record",)


def test_engine_yaml_identity_replans_the_channels_with_an_identity_step(files: Files) -> None:
    """If engine.yaml's identity: changes (thresholds, target), then the plan says so and the
    channels with an identity: step, and only those, get new plans (sources and lanes kept);
    unchanged, it leaves them alone; nothing of it needs a restart."""
    identity = ("identity:\n  domains:\n    - {namespace: CHU, oid: 1.2.250.1.999.1.1}\n"
                "  target: CHU\n")
    files.write("engine.yaml", textwrap.dedent(ENGINE) + identity)
    files.edit("channels/lab.yaml", "destinations:", "identity:\n  resolve: true\ndestinations:")
    unchanged = plan_after(files, lambda: None)
    assert (unchanged.identity_changed, [c.kind for c in unchanged.channels]) == (
        False, [rp.UNCHANGED, rp.UNCHANGED])
    plan = plan_after(files, lambda: files.write(
        "engine.yaml", textwrap.dedent(ENGINE) + identity + "  matching: {upper: 30}\n"))
    assert plan.identity_changed and plan.needs_restart == ()
    assert [(c.name, c.kind, c.swap_plan, c.restart_source, c.stop_destinations)
            for c in plan.channels] == [("adt", rp.UNCHANGED, False, False, ()),
                                        ("lab", rp.CHANGED, True, False, ())]
