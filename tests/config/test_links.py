"""Tests for engine.config.links: the cycle search as a pure function, and the checks on ``channel``
destinations across channel files, through the real loader, and for the ``response:``
block's load-time rules."""
from __future__ import annotations

import pytest

from engine.app import connector_specs
from engine.flow import handover
from engine.config.loader import ConfigError, load_engine_config
from engine.config.links import find_cycles
from engine.flow.response import ResponsePolicy
from tests.config.test_loader import SPECS as BASE_SPECS, engine_with

SPECS = {**BASE_SPECS, **handover.SPECS}


# -- find_cycles ---------------------------------------------------------------------------

@pytest.mark.parametrize("edges, cycles", [
    ({}, []),
    ({"a": ["b"], "b": ["c"]}, []),
    ({"a": ["b", "c"], "b": ["d"], "c": ["d"]}, []),  # a diamond joins, it does not loop
    ({"a": ["a"]}, [("a", "a")]),
    ({"a": ["b"], "b": ["a"]}, [("a", "b", "a")]),
    ({"b": ["c"], "c": ["a"], "a": ["b"]}, [("a", "b", "c", "a")]),
    ({"a": ["b"], "b": ["a"], "x": ["y"], "y": ["x"]}, [("a", "b", "a"), ("x", "y", "x")]),
    ({"a": ["b", "b"], "b": ["a"]}, [("a", "b", "a")]),  # two links, one cycle
    ({"in": ["norm"], "norm": ["out", "norm"]}, [("norm", "norm")]),
])
def test_find_cycles(edges, cycles):
    """If the links go round, then each cycle is listed as the walk that closes it."""
    assert find_cycles(edges) == cycles


def test_find_cycles_sees_a_cycle_reached_late():
    """If the cycle is only reached through other nodes, then it is found all the same."""
    assert find_cycles({"a": ["b"], "b": ["c"], "c": ["d"], "d": ["b"]}) == [
        ("b", "c", "d", "b")]


# -- through the loader ----------------------------------------------------------------------

def channel(name: str, *targets: str, enabled: bool = True, source: str = "channel") -> str:
    source_yaml = "{type: channel}" if source == "channel" else "{type: mllp, port: 0}"
    lines = [f"name: {name}", f"enabled: {'true' if enabled else 'false'}",
             f"source: {source_yaml}", "destinations:"]
    for index, target in enumerate(targets):
        lines += [f"  - name: to-{index}", "    type: channel", f"    channel: {target}"]
    if not targets:
        lines += ["  - name: files", "    type: file", "    directory: out"]
    return "\n".join(lines) + "\n"


def problems(tmp_path, **files: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_engine_config(engine_with(tmp_path, **files), SPECS)
    return [f"{p.file.rsplit('/', 1)[-1]}:{p.line}: {p.field}: {p.message}"
            for p in caught.value.problems]


def test_chained_channels_load(tmp_path):
    """If a channel feeds an enabled channel fed by nothing else, then all loads."""
    config = load_engine_config(engine_with(
        tmp_path, a=channel("a", "b", source="mllp"), b=channel("b", "c"), c=channel("c")),
        SPECS)
    a = next(c for c in config.channels if c.name == "a")
    assert a.destinations[0].connector.options == {"channel": "b"}
    assert next(c for c in config.channels if c.name == "b").source.type_name == "channel"


def test_unknown_target_is_reported_at_its_line_with_the_known_names(tmp_path):
    assert problems(tmp_path, a=channel("a", "bb", source="mllp"), b=channel("b")) == [
        'a.yaml:7: destinations[0].channel: unknown channel "bb" (did you mean "b"?); '
        "known channels: a, b"]


def test_disabled_target_is_reported_with_where_it_is_disabled(tmp_path):
    assert problems(tmp_path, a=channel("a", "b", source="mllp"),
                    b=channel("b", enabled=False)) == [
        'a.yaml:7: destinations[0].channel: channel "b" is disabled (enabled: false, '
        f"{tmp_path}/config/channels/b.yaml:1): enable it, or remove this destination"]


def test_a_disabled_channel_may_name_a_disabled_one(tmp_path):
    """If the channel that links is disabled too, then nothing runs and nothing is wrong."""
    load_engine_config(engine_with(tmp_path, a=channel("a", "b", enabled=False),
                                   b=channel("b", enabled=False)), SPECS)


@pytest.mark.parametrize("files, expected", [
    ({"a": ("a", "a")},
     ["a.yaml:7: destinations[0].channel: channel destinations form a cycle: a -> a"]),
    ({"a": ("a", "b"), "b": ("b", "a")},
     ["b.yaml:7: destinations[0].channel: channel destinations form a cycle: b -> a -> b"]),
    ({"a": ("a", "b"), "b": ("b", "c"), "c": ("c", "x", "a")},
     ["c.yaml:10: destinations[1].channel: channel destinations form a cycle: c -> a -> b -> c"]),
])
def test_cycles_are_reported_once_listing_the_channels(tmp_path, files, expected):
    """If channels feed each other, then the link closing the cycle is reported, with the
    whole cycle, whether it runs through one channel or several."""
    written = {name: channel(*args) for name, args in files.items()}
    written["x"] = channel("x")
    assert [p.split("; a channel")[0] for p in problems(tmp_path, **written)] == expected


# -- the response block at load ---------------------------------------------------------------

RESPONSE_CHANNEL = """\
    name: a
    source: {type: mllp, port: 0}
    response:
    %s
    destinations:
      - {name: files, type: file, directory: out}
    """


def with_response(*lines: str) -> str:
    return RESPONSE_CHANNEL % "\n    ".join(f"  {line}" for line in lines)


def test_the_response_block_loads_every_key(tmp_path):
    (loaded,) = load_engine_config(engine_with(tmp_path, a=with_response(
        "mode: after-processing", "on-error: AR", "on-filtered: AE",
        "sending-application: AIGUILLAGE", "sending-facility: CHU^1.2.250^ISO")), SPECS).channels
    assert loaded.response == ResponsePolicy("after-processing", "AR", "AE", "AIGUILLAGE",
                                             "CHU^1.2.250^ISO")


def test_the_response_block_defaults(tmp_path):
    (loaded,) = load_engine_config(engine_with(tmp_path, a=with_response("mode: after-commit")),
                                   SPECS).channels
    assert loaded.response == ResponsePolicy()


@pytest.mark.parametrize("lines, expected", [
    (("on-error: AR",), "a.yaml:4: response.on-error: on-error needs mode: after-processing: "
                        "in after-commit mode the ACK is sent before the message is processed"),
    (("mode: after-processing", "on-error: AA"),
     'a.yaml:5: response.on-error: expected one of AE, AR, got "AA"'),
    (("mode: after-processing", "on-filtered: AR"),
     'a.yaml:5: response.on-filtered: expected one of AA, AE, got "AR"'),
    (("sending-application: A&B",),
     "a.yaml:4: response.sending-application: '&' cannot be written in MSH-3/MSH-4; "
     'separate components with ^ (e.g. "AIGUILLAGE^1.2.250.1.999.1^ISO")'),
    (("sending-facility: 12",),
     "a.yaml:4: response.sending-facility: expected a string, got 12; put it in quotes if it "
     "is meant as text"),
    (("ack: after-commit",), 'a.yaml:4: response.ack: unknown option "ack"; known: '
                             "application-ack, mode, on-error, on-filtered, sending-application, sending-facility"),
])
def test_response_mistakes_are_reported_at_their_line(tmp_path, lines, expected):
    assert problems(tmp_path, a=with_response(*lines)) == [expected]


def test_the_application_ack_return_route_loads_as_an_mllp_destination(tmp_path):
    (loaded,) = load_engine_config(engine_with(tmp_path, a=with_response(
        "application-ack: {host: his.example, port: 2575, ack_timeout: 5s}")),
        connector_specs()).channels
    route = loaded.response.application_ack
    assert (route.type_name, route.name, route.options["host"], route.options["port"],
            route.options["ack_timeout"]) == ("mllp", "application-ack", "his.example", 2575, 5)
    assert route.file.endswith("a.yaml") and route.line == 4


@pytest.mark.parametrize("lines, expected", [
    (("application-ack: {host: his.example}",),
     'a.yaml:4: response.application-ack.port: missing required option "port"'),
    (("application-ack: {host: his.example, port: 2575, timeout: 5}",),
     'a.yaml:4: response.application-ack.timeout: unknown option "timeout"'),
    (("application-ack: {host: his.example, port: 2575, type: file}",),
     'a.yaml:4: response.application-ack.type: expected one of mllp, got "file"'),
])
def test_application_ack_mistakes_are_reported_at_their_line(tmp_path, lines, expected):
    with pytest.raises(ConfigError) as raised:
        load_engine_config(engine_with(tmp_path, a=with_response(*lines)), connector_specs())
    written = [f"{p.file.rsplit('/', 1)[-1]}:{p.line}: {p.field}: {p.message}"
               for p in raised.value.problems]
    assert [p for p in written if p.startswith(expected)], written


def test_the_old_ack_block_is_refused(tmp_path):
    """If a channel still says ``ack:``, then it is an unknown option (no alias)."""
    text = with_response("mode: after-commit").replace("response:", "ack:")
    assert problems(tmp_path, a=text)[0].startswith('a.yaml:3: ack: unknown option "ack"')
