"""
Tests for engine.config.loader, engine.config.schema and engine.config.yamlsource: loading engine.yaml and
channel files, and reporting every mistake with its file, line and field.
"""
from __future__ import annotations

import os
import pickle
import socket
import textwrap

import pytest

from engine.config.admin import AdminConfig
from engine.config.loader import (
    ConfigError, ConfigProblem, load_channel_file, load_engine_config, resolve_database_url)
from engine.config.settings import OrderingPolicy, RetryPolicy
from engine.config.schema import Invalid, parse_duration, parse_size
from engine.interfaces import ConnectorSpec, OptionSpec

SPECS = {
    ("source", "mllp"): ConnectorSpec("source", "mllp", (
        OptionSpec("host", "str", default="127.0.0.1"),
        OptionSpec("port", "port", required=True),
        OptionSpec("max_frame_size", "size", default="16MiB"),
        OptionSpec("idle_timeout", "duration", default=300),
    )),
    ("source", "file"): ConnectorSpec("source", "file", (
        OptionSpec("directory", "path", required=True),
    )),
    ("destination", "file"): ConnectorSpec("destination", "file", (
        OptionSpec("directory", "path", required=True),
        OptionSpec("mode", "str", default="append", choices=("append", "overwrite")),
    )),
}

ENGINE_YAML = """\
    node: node-1
    store:
      url: sqlite:///../var/aiguillage.db
    admin:
      host: 127.0.0.1
      port: 8026
    channels:
      - channels/*.yaml
    """

ADT_YAML = """\
    name: adt-in
    description: ADT from the hospital
    source:
      type: mllp
      port: 2575
    destinations:
      - name: archive
        type: file
        directory: ../../archive/adt
      - name: copy
        type: file
        directory: /srv/copy
        retry:
          max_attempts: 5
          initial_delay: 250ms
          multiplier: 3
          max_delay: 2m
        ordering:
          key: patient
    """

LAB_YAML = """\
    name: lab-in
    enabled: false
    source:
      type: mllp
      host: 0.0.0.0
      port: 2576
      max_frame_size: 64KiB
      idle_timeout: 1h
    response:
      mode: after-processing
    encoding: 8859/1
    dedupe: false
    destinations:
      - name: archive
        type: file
        directory: archive
    """


def write(root, relative: str, text: str) -> str:
    """Write dedented ``text`` to ``root/relative`` and return that path as a string."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def engine_with(tmp_path, **channels: str) -> str:
    """An engine.yaml in ``tmp_path/config`` naming ``channels/*.yaml``, with those files."""
    for name, text in channels.items():
        write(tmp_path, f"config/channels/{name}.yaml", text)
    return write(tmp_path, "config/engine.yaml", ENGINE_YAML)


def problems_of(load, *args) -> list[ConfigProblem]:
    """The problems of the ConfigError that ``load(*args)`` raises."""
    with pytest.raises(ConfigError) as caught:
        load(*args, SPECS)
    return caught.value.problems


def only_problem(load, *args) -> ConfigProblem:
    """The single problem ``load(*args)`` reports."""
    problems = problems_of(load, *args)
    assert len(problems) == 1, [str(problem) for problem in problems]
    return problems[0]


def channel_problem(tmp_path, text: str) -> ConfigProblem:
    """The single problem of a channel file holding ``text``."""
    return only_problem(load_channel_file, write(tmp_path, "adt.yaml", text))


# Loading a valid configuration


def test_valid_engine_and_channels_load_with_defaults(tmp_path):
    """If engine.yaml names two valid channel files, then both load, defaults filled in."""
    path = engine_with(tmp_path, adt=ADT_YAML, lab=LAB_YAML)
    config = load_engine_config(path, SPECS)
    assert (config.path, config.node, config.log_level) == (path, "node-1", "info")
    assert config.admin == AdminConfig(
        "127.0.0.1", 8026, token_file=str(tmp_path / "config" / "admin.token"))
    assert config.store.writer_batch_max == 1000
    adt, lab = config.channels
    assert (adt.name, adt.description, adt.enabled, adt.response.mode, adt.encoding, adt.dedupe) == (
        "adt-in", "ADT from the hospital", True, "after-commit", "UNICODE UTF-8", True)
    assert adt.source.type_name == "mllp" and adt.source.name == "adt-in"
    assert adt.source.options == {"host": "127.0.0.1", "port": 2575,
                                  "max_frame_size": 16 * 1024 * 1024, "idle_timeout": 300.0}
    assert type(adt.source.options) is dict
    archive, copy = adt.destinations
    assert archive.retry == RetryPolicy(10, 1.0, 2.0, 300.0)
    assert archive.ordering == OrderingPolicy("destination", 1)
    assert archive.connector.options["mode"] == "append"
    assert copy.retry == RetryPolicy(5, 0.25, 3.0, 120.0)
    assert copy.ordering == OrderingPolicy("patient", 4)
    assert (lab.enabled, lab.response.mode, lab.encoding, lab.dedupe) == (
        False, "after-processing", "8859/1", False)
    assert lab.source.options["max_frame_size"] == 64 * 1024
    assert lab.source.options["idle_timeout"] == 3600.0


def test_files_and_lines_are_recorded(tmp_path):
    """If a channel loads, then it and its parts know the file and line they come from."""
    path = engine_with(tmp_path, adt=ADT_YAML)
    adt = load_engine_config(path, SPECS).channels[0]
    assert adt.file == os.path.join(os.path.dirname(path), "channels", "adt.yaml")
    assert adt.line == 1
    assert (adt.source.file, adt.source.line) == (adt.file, 3)
    assert [(d.file, d.line, d.connector.line) for d in adt.destinations] == [
        (adt.file, 7, 7), (adt.file, 10, 10)]


def test_optional_engine_settings_have_defaults(tmp_path):
    """If engine.yaml gives only the store, then node is the host name and there is no admin."""
    path = write(tmp_path, "engine.yaml", "store: {url: 'postgresql+psycopg://u@db/aig'}\n")
    config = load_engine_config(path, SPECS)
    assert (config.node, config.admin, config.channels) == (socket.gethostname(), None, ())
    assert config.store.url == "postgresql+psycopg://u@db/aig"


def test_admin_without_port_means_no_listener(tmp_path):
    """If admin.port is null, then there is no admin listener."""
    path = write(tmp_path, "engine.yaml", "store: {url: 'sqlite://'}\nadmin: {port: null}\n")
    assert load_engine_config(path, SPECS).admin is None


def test_relative_paths_are_resolved_against_their_file(tmp_path):
    """If paths are relative, then each is resolved against the directory of its own file."""
    path = engine_with(tmp_path, adt=ADT_YAML)
    config = load_engine_config(path, SPECS)
    assert config.store.url == f"sqlite:///{tmp_path / 'var' / 'aiguillage.db'}"
    archive, copy = config.channels[0].destinations
    assert archive.connector.options["directory"] == str(tmp_path / "archive" / "adt")
    assert copy.connector.options["directory"] == "/srv/copy"


@pytest.mark.parametrize("url, expected", [
    ("sqlite:///db/a.db", "sqlite:////base/db/a.db"),
    ("sqlite+pysqlite:///a.db?timeout=5", "sqlite+pysqlite:////base/a.db?timeout=5"),
    ("sqlite:////abs/a.db", "sqlite:////abs/a.db"),
    ("sqlite://", "sqlite://"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("postgresql+psycopg://aig:secret@db:5432/aig", "postgresql+psycopg://aig:secret@db:5432/aig"),
])
def test_database_urls(url, expected):
    """If a sqlite URL has a relative path, then it is made absolute; others stay as written."""
    assert resolve_database_url(url, "/base") == expected


@pytest.mark.parametrize("url", ["aiguillage.db", "sqlite://host/a.db", "://x"])
def test_bad_database_urls(url):
    """If a store URL has no scheme, or a sqlite URL names a host, then it is refused."""
    with pytest.raises(Invalid, match="expected a database URL like"):
        resolve_database_url(url, "/base")


def test_bad_store_url_is_reported_at_its_line(tmp_path):
    """If the store URL is not a URL, then the problem points at store.url."""
    path = write(tmp_path, "engine.yaml", "node: n\nstore:\n  url: var/aiguillage.db\n")
    problem = only_problem(load_engine_config, path)
    assert (problem.line, problem.field) == (3, "store.url")


def test_config_error_survives_pickling():
    """If a ConfigError is pickled, as across processes, then its problems come back."""
    error = ConfigError([ConfigProblem("b.yaml", 2, 1, "x", "bad"),
                         ConfigProblem("a.yaml", 9, 1, "", "worse")])
    copy = pickle.loads(pickle.dumps(error))
    assert copy.problems == error.problems
    assert str(copy) == "a.yaml:9: worse\nb.yaml:2: x: bad"


@pytest.mark.parametrize("written, seconds", [
    (0, 0.0), (30, 30.0), (1.5, 1.5), ("250ms", 0.25), ("5s", 5.0), ("2m", 120.0),
    ("1h", 3600.0), ("0.5s", 0.5), ("30", 30.0),
])
def test_durations(written, seconds):
    """If a duration is a number or has a unit ms, s, m or h, then it is read in seconds."""
    assert parse_duration(written) == seconds


@pytest.mark.parametrize("written", ["5 parsecs", "", "-1s", "1d", "s", -2, True, [1]])
def test_bad_durations(written):
    """If a duration has no number, a negative one or an unknown unit, then it is refused."""
    with pytest.raises(Invalid, match='expected a duration like "30s" or "5m"'):
        parse_duration(written)


@pytest.mark.parametrize("written, size", [
    (0, 0), (4096, 4096), ("100B", 100), ("64KiB", 65536), ("16MiB", 16 * 1024**2),
    ("1GiB", 1024**3), ("500kB", 500_000), ("2MB", 2_000_000), ("16mib", 16 * 1024**2),
    ("1.5KiB", 1536),
])
def test_sizes(written, size):
    """If a size is a number or has a binary or decimal unit, then it is read in bytes."""
    assert parse_size(written) == size


@pytest.mark.parametrize("written", ["16 megs", "KiB", -1, 1.5, False])
def test_bad_sizes(written):
    """If a size has no number, an unknown unit or is not whole bytes, then it is refused."""
    with pytest.raises(Invalid, match='expected a size like "64KiB" or "16MiB"'):
        parse_size(written)


# RetryPolicy


def test_retry_delays_grow_then_cap():
    """If attempts keep failing, then delays start at initial_delay, multiply, and cap."""
    policy = RetryPolicy(max_attempts=10, initial_delay=1.0, multiplier=2.0, max_delay=5.0)
    assert [policy.delay_for(attempt) for attempt in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert RetryPolicy(multiplier=1.0, initial_delay=3.0).delay_for(50) == 3.0


def test_retry_delay_does_not_overflow():
    """If the attempt number is huge, then the delay is max_delay, not an overflow."""
    assert RetryPolicy(multiplier=10.0).delay_for(100_000) == 300.0


def test_retry_attempts_count_from_one():
    """If attempt 0 is asked for, then ValueError, since the first try is attempt 1."""
    with pytest.raises(ValueError):
        RetryPolicy().delay_for(0)


# Errors in a single channel file


def test_unknown_source_type_lists_known_types(tmp_path):
    """If a source type is not registered, then the problem names it and the known ones."""
    problem = channel_problem(tmp_path, """\
        name: adt-in
        source:
          type: mlp
          port: 2575
        destinations: [{name: a, type: file, directory: a}]
        """)
    assert (problem.line, problem.field) == (3, "source.type")
    assert problem.message == ('unknown source type "mlp" (did you mean "mllp"?); '
                               "known source types: file, mllp")


def test_unknown_option_suggests_the_close_one(tmp_path):
    """If an option is misspelt, then the problem suggests the option it is close to."""
    problem = channel_problem(tmp_path, """\
        name: adt-in
        source:
          type: mllp
          port: 2575
          idle_timout: 5s
        destinations: [{name: a, type: file, directory: a}]
        """)
    assert (problem.line, problem.column, problem.field) == (5, 3, "source.idle_timout")
    assert problem.message == 'unknown option "idle_timout" (did you mean "idle_timeout"?)'


def test_unknown_option_far_from_any_lists_known_ones(tmp_path):
    """If an unknown option is close to none, then the problem lists the known options."""
    problem = channel_problem(tmp_path, """\
        name: adt-in
        source: {type: mllp, port: 2575}
        destinations: [{name: a, type: file, directory: a}]
        zzz: 1
        """)
    assert (problem.line, problem.field) == (4, "zzz")
    assert problem.message.startswith('unknown option "zzz"; known: consent, dedupe, description, destinations,')


def test_missing_required_option(tmp_path):
    """If a required option is absent, then the problem is at the line of its section."""
    problem = channel_problem(tmp_path, """\
        name: adt-in
        source:
          type: mllp
        destinations:
          - name: a
            type: file
            directory: a
        """)
    assert (problem.line, problem.field) == (2, "source.port")
    assert problem.message == 'missing required option "port"'


@pytest.mark.parametrize("port, message", [
    ('"abc"', 'expected a port number from 0 to 65535, got "abc"'),
    ("70000", "expected a port number from 0 to 65535, got 70000"),
    ("-1", "expected a port number from 0 to 65535, got -1"),
])
def test_bad_port(tmp_path, port, message):
    """If a port is not a number from 0 to 65535, then the problem names the port field."""
    problem = channel_problem(tmp_path, f"""\
        name: adt-in
        source:
          type: mllp
          port: {port}
        destinations: [{{name: a, type: file, directory: a}}]
        """)
    assert (problem.line, problem.field, problem.message) == (4, "source.port", message)


def test_bad_duration_in_retry(tmp_path):
    """If a retry delay is not a duration, then the problem reads file:line: field: message."""
    path = write(tmp_path, "config/channels/adt.yaml", """\
        name: adt-in
        source: {type: mllp, port: 2575}
        destinations:
          - name: archive
            type: file
            directory: a
            retry:
              max_delay: 5 parsecs
        """)
    problem = only_problem(load_channel_file, path)
    assert str(problem) == (f'{path}:8: destinations[0].retry.max_delay: '
                            'expected a duration like "30s" or "5m", got "5 parsecs"')


@pytest.mark.parametrize("section, line, field, message", [
    ("response: {mode: after-comit}", 3, "response.mode",
     'expected one of after-commit, after-processing, got "after-comit" '
     '(did you mean "after-commit"?)'),
    ("encoding: 8859/99", 3, "encoding", 'unknown character set "8859/99": use an HL7 table'),
    ("enabled: maybe", 3, "enabled", 'expected true or false, got "maybe"'),
    ("description: 12", 3, "description",
     "expected a string, got 12; put it in quotes if it is meant as text"),
    ("destinations: []", 3, "destinations", "a channel needs a destination"),
    ("destinations: [{name: a, type: file, directory: a, retry: {max_attempts: 0}}]", 3,
     "destinations[0].retry.max_attempts", "must be 1 or more, got 0"),
    ("destinations: [{name: a, type: file, directory: a, retry: {multiplier: 0.5}}]", 3,
     "destinations[0].retry.multiplier", "must be 1 or more, got 0.5"),
    ("destinations: [{name: a, type: file, directory: a, ordering: {lanes: 65}}]", 3,
     "destinations[0].ordering.lanes", "must be from 1 to 64, got 65"),
    ("destinations: [{name: a, type: file, directory: a, ordering: {key: visit}}]", 3,
     "destinations[0].ordering.key", 'expected one of destination, patient, got "visit"'),
    ("destinations: [{name: a, type: file, directory: a, mode: wipe}]", 3,
     "destinations[0].mode", 'expected one of append, overwrite, got "wipe"'),
    ("destinations: [{name: a, type: file, directory: a, retry: 5}]", 3,
     "destinations[0].retry", "expected a mapping, got 5"),
    ("destinations: [archive]", 3, "destinations[0]",
     'expected a mapping describing a destination, got "archive"'),
])
def test_invalid_channel_values(tmp_path, section, line, field, message):
    """If a channel value breaks its rule, then the problem names its line, field and rule."""
    text = "name: adt-in\nsource: {type: mllp, port: 2575}\n" + section + "\n"
    if not section.startswith("destinations"):
        text += "destinations: [{name: a, type: file, directory: a}]\n"
    problem = channel_problem(tmp_path, text)
    assert (problem.line, problem.field) == (line, field)
    assert problem.message.startswith(message)


@pytest.mark.parametrize("encoding", ["8859/15", "unicode utf-8", "latin-1"])
def test_encodings_decoding_knows_are_accepted(tmp_path, encoding):
    """If encoding is a table 0211 name or a Python codec, then the channel loads with it."""
    path = write(tmp_path, "adt.yaml", f"""\
        name: adt-in
        source: {{type: mllp, port: 2575}}
        encoding: {encoding}
        destinations: [{{name: a, type: file, directory: a}}]
        """)
    assert load_channel_file(path, SPECS).encoding == encoding


def test_channel_name_must_be_an_identifier(tmp_path):
    """If a channel name has capitals or spaces, then the problem says which names are valid."""
    problem = channel_problem(tmp_path, """\
        name: ADT In
        source: {type: mllp, port: 2575}
        destinations: [{name: a, type: file, directory: a}]
        """)
    assert (problem.line, problem.field) == (1, "name")
    assert problem.message.startswith('"ADT In" is not a valid name: use lower-case letters')


def test_destination_names_are_unique_in_a_channel(tmp_path):
    """If two destinations share a name, then the second is reported, naming the first."""
    problem = channel_problem(tmp_path, """\
        name: adt-in
        source: {type: mllp, port: 2575}
        destinations:
          - {name: archive, type: file, directory: a}
          - name: archive
            type: file
            directory: b
        """)
    assert (problem.line, problem.field) == (5, "destinations[1].name")
    assert problem.message == (
        'destination name "archive" is already used by destinations[0] (line 4)')


def test_duplicate_key(tmp_path):
    """If a key is written twice in a mapping, then the second is reported with the first's line."""
    problem = channel_problem(tmp_path, """\
        name: adt-in
        source:
          type: mllp
          port: 2575
          host: 127.0.0.1
          port: 2576
        destinations: [{name: a, type: file, directory: a}]
        """)
    assert (problem.line, problem.column, problem.field) == (6, 3, "source.port")
    assert problem.message == ('duplicate key "port", also on line 4; '
                               "YAML would silently keep only the last value")


def test_merge_keys_are_not_duplicates(tmp_path):
    """If a key overrides one merged in with <<, then that is not reported as a duplicate."""
    path = write(tmp_path, "adt.yaml", """\
        name: adt-in
        source: {type: mllp, port: 2575}
        destinations:
          - &base {name: a, type: file, directory: a, mode: overwrite}
          - <<: *base
            name: b
        """)
    second = load_channel_file(path, SPECS).destinations[1]
    assert (second.name, second.connector.options["mode"]) == ("b", "overwrite")


def test_yaml_syntax_error_has_file_and_line(tmp_path):
    """If a file is not well-formed YAML, then the problem gives its file and line."""
    path = write(tmp_path, "adt.yaml", """\
        name: adt-in
        source:
          type: mllp
         port: 2575
        """)
    problem = only_problem(load_channel_file, path)
    assert (problem.file, problem.line, problem.field) == (path, 4, "")
    assert problem.message.startswith("invalid YAML: ")
    assert str(problem).startswith(f"{path}:4: invalid YAML: ")


def test_python_tags_are_refused(tmp_path):
    """If a file uses a python/object tag, then it is a problem, never an object built."""
    problem = channel_problem(tmp_path, "name: !!python/object/apply:os.getcwd []\n")
    assert problem.line == 1
    assert "could not determine a constructor" in problem.message


@pytest.mark.parametrize("text, line, message", [
    ("", 0, "expected a mapping of options at the top of the file, the file is empty"),
    ("- a\n", 1, 'expected a mapping of options at the top of the file, found a list'),
])
def test_top_level_must_be_a_mapping(tmp_path, text, line, message):
    """If a file is empty or holds a list, then the problem says a mapping was expected."""
    problem = channel_problem(tmp_path, text)
    assert (problem.line, problem.message) == (line, message)


def test_missing_file(tmp_path):
    """If a channel file does not exist, then the problem names it, without a line."""
    path = str(tmp_path / "nowhere.yaml")
    problem = only_problem(load_channel_file, path)
    assert str(problem).startswith(f"{path}: cannot read the file: ")


def test_all_problems_of_a_file_are_reported(tmp_path):
    """If a channel file has several mistakes, then each is reported, not only the first."""
    problems = problems_of(load_channel_file, write(tmp_path, "adt.yaml", """\
        name: adt-in
        source: {type: mllp, port: abc, idle_timeout: soon}
        destinations:
          - {name: a, type: file}
          - {name: b, type: ftp}
        """))
    assert [(p.line, p.field) for p in problems] == [
        (2, "source.port"), (2, "source.idle_timeout"), (4, "destinations[0].directory"),
        (5, "destinations[1].type")]


# Errors across files


def test_channel_name_used_by_two_files(tmp_path):
    """If two channel files use one name, then the second is reported, naming the first file."""
    path = engine_with(tmp_path, adt=ADT_YAML, copy=ADT_YAML.replace("2575", "2599"))
    problem = only_problem(load_engine_config, path)
    first = os.path.join(os.path.dirname(path), "channels", "adt.yaml")
    assert problem.file == os.path.join(os.path.dirname(path), "channels", "copy.yaml")
    assert (problem.line, problem.field) == (1, "name")
    assert problem.message == (f'channel name "adt-in" is also used by {first}:1; '
                               "names must be unique")


def test_the_shared_records_refusals_channel_name_is_reserved(tmp_path):
    """If a channel could be named shared_record, then its messages would mix with the
    shared record's refused requests, stored under that name."""
    path = engine_with(tmp_path, adt=ADT_YAML.replace("adt-in", "shared_record"))
    problem = only_problem(load_engine_config, path)
    assert (problem.line, problem.field) == (1, "name")
    assert problem.message == ('channel name "shared_record" is reserved: the shared '
                               "record's refused requests are stored under it")


def test_two_sources_on_one_port(tmp_path):
    """If two enabled channels listen on one host and port, then the second is reported."""
    lab = LAB_YAML.replace("enabled: false", "enabled: true").replace("2576", "2575")
    path = engine_with(tmp_path, adt=ADT_YAML, lab=lab)
    problem = only_problem(load_engine_config, path)
    assert problem.file.endswith("lab.yaml")
    assert (problem.line, problem.field) == (6, "source.port")
    assert problem.message.startswith(
        'channel "lab-in" listens on 0.0.0.0:2575, as does channel "adt-in" (')


def test_sources_on_different_hosts_or_disabled_do_not_clash(tmp_path):
    """If sources share a port on different hosts, or one is disabled, then that is fine."""
    other_host = """\
        name: adt-two
        source: {type: mllp, host: 10.0.0.1, port: 2575}
        destinations: [{name: a, type: file, directory: a}]
        """
    disabled = LAB_YAML.replace("2576", "2575")
    path = engine_with(tmp_path, adt=ADT_YAML, two=other_host, lab=disabled)
    assert len(load_engine_config(path, SPECS).channels) == 3


def test_port_zero_never_clashes(tmp_path):
    """If two sources ask for port 0, then they do not clash: each gets a free port."""
    zero = ADT_YAML.replace("2575", "0")
    path = engine_with(tmp_path, a=zero, b=zero.replace("adt-in", "adt-two"))
    assert len(load_engine_config(path, SPECS).channels) == 2


def test_source_on_the_admin_port(tmp_path):
    """If a source listens on the admin listener's port, then the source is reported."""
    path = engine_with(tmp_path, adt=ADT_YAML.replace("2575", "8026"))
    problem = only_problem(load_engine_config, path)
    assert (problem.line, problem.field) == (5, "source.port")
    assert problem.message == (f'channel "adt-in" listens on 127.0.0.1:8026, as does the admin '
                               f"listener ({path}:6)")


def test_glob_matching_no_file(tmp_path):
    """If a channels glob matches no file, then the problem points at that glob."""
    path = write(tmp_path, "config/engine.yaml", """\
        store: {url: "sqlite:///a.db"}
        channels:
          - channels/*.yaml
        """)
    problem = only_problem(load_engine_config, path)
    assert (problem.file, problem.line, problem.field) == (path, 3, "channels[0]")
    assert problem.message == f'no file matches "channels/*.yaml" in {tmp_path / "config"}'


def test_errors_in_several_files_are_reported_together(tmp_path):
    """If engine.yaml and two channel files have mistakes, then all are reported, sorted."""
    write(tmp_path, "config/channels/b.yaml", """\
        name: b
        source: {type: mllp, port: 70000}
        destinations: [{name: a, type: file, directory: a}]
        """)
    write(tmp_path, "config/channels/a.yaml", "name: a\nsource: {type: mllp, port: 1}\n")
    write(tmp_path, "config/channels/c.yaml", "name: c\nsource: [\n")
    path = write(tmp_path, "config/engine.yaml", """\
        store: {url: "sqlite:///a.db", writer_batch_max: 0}
        log_level: verbose
        channels: [channels/*.yaml]
        """)
    error = pytest.raises(ConfigError, load_engine_config, path, SPECS).value
    channels = os.path.join(os.path.dirname(path), "channels")
    assert [(p.file, p.line, p.field) for p in error.problems] == [
        (os.path.join(channels, "a.yaml"), 1, "destinations"),
        (os.path.join(channels, "b.yaml"), 2, "source.port"),
        (os.path.join(channels, "c.yaml"), 3, ""),
        (path, 1, "store.writer_batch_max"),
        (path, 2, "log_level"),
    ]
    assert str(error).splitlines() == [str(problem) for problem in error.problems]


def test_channel_files_matched_twice_load_once(tmp_path):
    """If two globs match the same file, then its channel is loaded once, not reported twice."""
    write(tmp_path, "config/channels/adt.yaml", ADT_YAML)
    path = write(tmp_path, "config/engine.yaml", """\
        store: {url: "sqlite:///a.db"}
        channels: [channels/*.yaml, channels/adt.yaml]
        """)
    assert [c.name for c in load_engine_config(path, SPECS).channels] == ["adt-in"]
