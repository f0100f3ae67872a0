"""
The identity: sections (engine.config.identity): engine.yaml's index and a channel's step,
every mistake reported with its file and line.
"""
from __future__ import annotations

import textwrap

import pytest

from engine.config.identity import IdentityConfig, IdentityStepConfig, target_domains
from engine.config.loader import ConfigError, load_engine_config
from identity.model import INS_NIR_TEST
from tests.config.test_loader import SPECS

ENGINE = """\
    store: {url: "sqlite:///x.db"}
    identity:
      domains:
        - {namespace: CHU, oid: 1.2.250.1.999.1.1}
        - {namespace: GHT, oid: 1.2.250.1.999.2.1, type: PI}
      target: GHT
      matching: {upper: 20, lower: 10}
    channels: [c.yaml]
    """
CHANNEL = """\
    name: c
    source: {type: mllp, port: 3000}
    response: {mode: after-processing}
    identity:
      feed: true
      rewrite-pid3: INS-then-local
      queries: true
      query-limit: 20
    destinations:
      - {name: d, type: file, directory: out}
    """


def load(tmp_path, engine: str = ENGINE, channel: str = CHANNEL):
    (tmp_path / "engine.yaml").write_text(textwrap.dedent(engine))
    (tmp_path / "c.yaml").write_text(textwrap.dedent(channel))
    return load_engine_config(tmp_path / "engine.yaml", SPECS)


def problems(tmp_path, engine: str = ENGINE, channel: str = CHANNEL) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, engine, channel)
    return [f"{p.file.rsplit('/', 1)[-1]}:{p.line}: {p.field}: {p.message}"
            for p in raised.value.problems]


def test_a_good_configuration_loads(tmp_path):
    config = load(tmp_path)
    identity = config.identity
    assert [d.namespace for d in identity.domains] == ["CHU", "GHT"]
    assert identity.target.oid == "1.2.250.1.999.2.1"
    assert (identity.model.upper, identity.model.lower) == (20.0, 10.0)
    step = config.channels[0].identity
    assert (step.feed, step.resolve, step.queries, step.query_limit, step.ins_first,
            step.targets) == (True, True, True, 20, True, ("local",))
    assert target_domains(identity, step) == (identity.target,)


def test_ins_domains_are_known_by_their_namespace():
    config = IdentityConfig()
    assert config.named("ASIP-SANTE-INS-NIR-TEST") == INS_NIR_TEST
    assert target_domains(config, IdentityStepConfig(targets=("ASIP-SANTE-INS-NIR-TEST",))) \
        == (INS_NIR_TEST,)


def test_engine_mistakes_are_each_named_at_their_line(tmp_path):
    engine = """\
        store: {url: "sqlite:///x.db"}
        identity:
          domains:
            - {namespace: CHU, oid: 1.2.250.1.213.1.4.8}
            - {namespace: GHT, oid: not-an-oid}
            - {namespace: A, oid: 1.2.3}
            - {namespace: A, oid: 1.2.4}
            - {oid: 1.2.5}
          target: NOPE
          matching: {upper: 5, lower: 12, colour: 1}
        channels: [c.yaml]
        """
    found = problems(tmp_path, engine, CHANNEL.replace("INS-then-local", "INS"))
    assert found == [
        "engine.yaml:4: identity.domains[0].oid: 1.2.250.1.213.1.4.8 is the built-in "
        "ASIP-SANTE-INS-NIR domain: INS domains are always known",
        "engine.yaml:5: identity.domains[1].oid: identifier domain 'GHT': 'not-an-oid' is "
        "not an OID",
        "engine.yaml:7: identity.domains[3].namespace: namespace 'A' is declared twice",
        "engine.yaml:8: identity.domains[4].namespace: missing required option \"namespace\"",
        "engine.yaml:9: identity.target: unknown domain 'NOPE'; the declared domains are A",
        "engine.yaml:10: identity.matching: thresholds: lower 12.0 above upper 5.0",
        "engine.yaml:10: identity.matching.colour: unknown option \"colour\"; known: "
        "frequency_floor, frequency_prior, lower, margin, upper",
    ]


def test_step_mistakes_are_named_at_their_line(tmp_path):
    channel = CHANNEL.replace("    response: {mode: after-processing}\n", "").replace(
        "INS-then-local", "INS-then-XYZ").replace("query-limit: 20", "query-limit: 0")
    found = problems(tmp_path, channel=channel)
    assert found == [
        "c.yaml:6: identity.queries: queries are answered once the index has been asked: the "
        "channel needs response: {mode: after-processing}",
        "c.yaml:7: identity.query-limit: must be 1 or more, got 0",
    ]
    assert problems(tmp_path, channel=CHANNEL.replace("INS-then-local", "INS-then-XYZ")) == [
        "c.yaml:6: identity.rewrite-pid3: rewrite-pid3: unknown domain 'XYZ'; the declared "
        "domains are CHU, GHT"]


def test_local_needs_a_target_and_a_step_must_do_something(tmp_path):
    engine = ENGINE.replace("      target: GHT\n", "")
    assert problems(tmp_path, engine) == [
        "c.yaml:6: identity.rewrite-pid3: rewrite-pid3 names 'local' but engine.yaml's "
        "identity: section has no target"]
    idle = CHANNEL.replace("feed: true", "resolve: false").replace(
        "      rewrite-pid3: INS-then-local\n", "").replace("queries: true", "queries: false")
    assert problems(tmp_path, channel=idle) == [
        "c.yaml:4: identity: the step does nothing: set resolve, feed, queries or rewrite-pid3"]


def test_an_engine_without_identity_knows_only_the_ins(tmp_path):
    engine = "\n".join(l for l in ENGINE.splitlines() if not l.startswith(("    identity", "      ", "        ")))
    config = load(tmp_path, engine, CHANNEL.replace("INS-then-local", "INS"))
    assert config.identity.domains == () and config.identity.target is None
    assert config.channels[0].identity.ins_first
