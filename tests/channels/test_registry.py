"""The registry: specs by (role, type), building connectors by type name, config loading."""
from __future__ import annotations

import pytest
from twisted.internet import reactor

from channels import registry
from channels.file_destination import FileDestination
from channels.mllp_destination import MLLPDestination
from channels.mllp_source import MLLPSource
from engine.config.loader import load_engine_config
from engine.interfaces import ConnectorConfig, Destination, Source
from tests.channels.fakes import FakeReceiver


def test_specs_are_keyed_by_role_and_their_own_type_name():
    """If a spec is registered, then its key matches the role and type it declares."""
    specs = registry.connector_specs()
    assert set(specs) == {("source", "mllp"), ("destination", "mllp"), ("destination", "file"),
                          ("source", "xds"), ("destination", "xds")}
    for (role, type_name), spec in specs.items():
        assert (spec.role, spec.type_name) == (role, type_name)


def test_spec_options_do_not_shadow_the_loader_builtins():
    """If a connector declared "name", "type", "retry" or "ordering", the loader would eat it."""
    builtins = {"name", "type", "retry", "ordering"}
    for spec in registry.connector_specs().values():
        assert not builtins & {option.name for option in spec.options}, spec.type_name


def test_build_source_gives_an_mllp_source():
    config = ConnectorConfig("mllp", "adt", {"port": 0})
    source = registry.build_source(config, "adt", FakeReceiver(), reactor)
    assert isinstance(source, MLLPSource) and isinstance(source, Source)
    assert (source.name, source.channel, source.port) == ("adt", "adt", 0)


def test_build_destination_gives_one_instance_per_lane(tmp_path):
    """If two lanes are built, then each has its own destination (its own connection)."""
    config = ConnectorConfig("mllp", "lab", {"host": "127.0.0.1", "port": 2575})
    first = registry.build_destination(config, "adt", 0, reactor)
    second = registry.build_destination(config, "adt", 1, reactor)
    assert isinstance(first, MLLPDestination) and isinstance(first, Destination)
    assert first is not second and (first.lane, second.lane) == (0, 1)
    files = ConnectorConfig("file", "archive", {"directory": str(tmp_path)})
    assert isinstance(registry.build_destination(files, "adt", 0, reactor), FileDestination)


def test_unknown_type_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match='unknown destination type "smtp"; known '
                                         "destination types: file, mllp"):
        registry.build_destination(ConnectorConfig("smtp", "x"), "adt", 0, reactor)
    with pytest.raises(ValueError, match='unknown source type "file"; known source types: mllp'):
        registry.build_source(ConnectorConfig("file", "adt"), "adt", FakeReceiver(), reactor)


CHANNEL = """\
name: adt
source:
  type: mllp
  port: 0
  max_frame_size: 1MiB
destinations:
  - name: lab
    type: mllp
    host: lab.example
    port: 2575
    ack_timeout: 5s
  - name: archive
    type: file
    directory: out
"""


def test_loaded_channel_builds_with_the_loader_converted_options(tmp_path):
    """If a channel file is loaded with these specs, then its connectors build from it."""
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "adt.yaml").write_text(CHANNEL)
    (tmp_path / "engine.yaml").write_text(
        "store:\n  url: sqlite:///store.db\nchannels:\n  - channels/*.yaml\n")
    channel = load_engine_config(tmp_path / "engine.yaml", registry.connector_specs()).channels[0]
    source = registry.build_source(channel.source, channel.name, FakeReceiver(), reactor)
    assert source.stats()["frames_received"] == 0
    lab, archive = (registry.build_destination(d.connector, channel.name, 0, reactor)
                    for d in channel.destinations)
    assert (lab.address, archive.directory) == ("lab.example:2575",
                                                str(tmp_path / "channels" / "out"))
    assert archive.template == "{channel}-{message_id:012d}.hl7"
