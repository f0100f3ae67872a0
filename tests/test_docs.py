"""
The documentation's examples run: every configuration example in docs/ loads (or is refused
with the error the page shows), the option tables of docs/channels.md list every option with
its real default, and the command sessions of docs/cli.md give the exit codes (and, where
marked, the output) they show.

Conventions the pages follow (written for this test, readable by people):

- A ```yaml block starts with ``# file: engine.yaml`` or ``# file: channels/NAME.yaml``,
  optionally followed by ``# example: NAME`` (blocks with one NAME form one configuration;
  without it, the blocks of one section of the page do), or by ``# invalid-example``
  (a configuration of its own) or ``# invalid-example: NAME`` (several files). A configuration
  without ``engine.yaml`` gets a minimal one (SQLite store, ``channels/*.yaml``); one without a
  channel file gets a minimal channel. A ```yaml block that is not a file starts with
  ``# fragment``.
- The ```text block right after an invalid example's last block holds lines that must each be
  a line of what ``check-config`` reports: the loader's ConfigError or, when the files load,
  the complaints of the connectors it builds; paths shown relative to the configuration's
  directory, which itself is shown as ``/srv/aiguillage``.
- A TLS file a channel names inside the configuration's directory (``../tls/aiguillage.pem``)
  is written for the test: a throwaway CA, server and client certificate, made with
  ``cryptography`` as in tests/mllp/test_tls.py, so that building the connectors, as
  ``check-config`` does, reads real files.
- On any page (docs/cli.md mostly), ``<!-- doctest: example=NAME [output] -->`` before a
  ```console block runs its ``$ aiguillage ...`` lines with click's CliRunner in a directory
  holding configuration NAME (``example=repo``: the repository itself); ``$ echo $?``
  followed by a number checks the previous command's exit code; with ``output`` every line
  shown after a command must be a line of what it printed.

test-case-name: tests.test_docs
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from twisted.internet import reactor

from engine.config import loader as cfg
from engine.config import settings
from engine.app import check_connectors, connector_specs, load_config
from engine.cli.main import main
from engine.config.identity import IDENTITY_SECTION, STEP_SECTION
from engine.config.schema import ConfigError, convert
from tests.mllp.test_tls import make_pki

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SHOWN_ROOT = "/srv/aiguillage"  # how the pages name the directory of a configuration

DEFAULT_ENGINE = textwrap.dedent("""\
    store:
      url: sqlite:///var/aiguillage.db
    channels:
      - channels/*.yaml
    """)
DEFAULT_CHANNEL = textwrap.dedent("""\
    name: doc-default
    source:
      type: mllp
      port: 0
    destinations:
      - name: archive
        type: file
        directory: var/out
    """)

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_HEADING = re.compile(r"^(#{2,6}) (.+)$", re.M)
_FILE = re.compile(r"# file: (engine\.yaml|channels/[a-z0-9][a-z0-9_-]*\.yaml)\s*$")


@dataclass
class Block:
    page: str
    language: str
    text: str
    start: int  # offset of the fence in the page
    end: int
    line: int  # line of the fence, for messages
    section: str


@dataclass
class Example:
    key: str
    valid: bool
    files: dict[str, str] = field(default_factory=dict)
    expected: list[str] = field(default_factory=list)
    where: str = ""


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    headings = [(m.start(), m.group(2)) for m in _HEADING.finditer(text)]
    found = []
    for match in _FENCE.finditer(text):
        section = next((title for start, title in reversed(headings)
                        if start < match.start()), "")
        found.append(Block(page.name, match.group(1), match.group(2), match.start(),
                           match.end(), text.count("\n", 0, match.start()) + 1, section))
    return found


def examples(page: Path) -> dict[str, Example]:
    """The configurations written on ``page``, by key."""
    found: dict[str, Example] = {}
    page_blocks = blocks(page)
    for index, block in enumerate(page_blocks):
        if block.language != "yaml":
            continue
        lines = block.text.splitlines()
        where = f"{page.name}:{block.line}"
        if lines and lines[0].startswith("# fragment"):
            continue
        match = _FILE.fullmatch(lines[0]) if lines else None
        assert match, f"{where}: a yaml block starts with '# file: ...' or '# fragment'"
        marker = lines[1] if len(lines) > 1 else ""
        if marker.startswith("# invalid-example"):
            name = marker.partition(":")[2].strip() or f"line-{block.line}"
            key, valid = f"{page.name}:invalid:{name}", False
        elif marker.startswith("# example:"):
            key, valid = f"{page.name}:{marker.partition(':')[2].strip()}", True
        else:
            key, valid = f"{page.name}:section:{block.section}", True
        example = found.setdefault(key, Example(key, valid, where=where))
        assert match.group(1) not in example.files, f"{where}: {match.group(1)} written twice"
        example.files[match.group(1)] = block.text
        following = page_blocks[index + 1] if index + 1 < len(page_blocks) else None
        if not valid and following is not None and following.language == "text":
            example.expected += [line for line in following.text.splitlines() if line.strip()]
    return found


def write_example(example: Example, directory: Path) -> Path:
    files = dict(example.files)
    files.setdefault("engine.yaml", DEFAULT_ENGINE)
    if not any(name.startswith("channels/") for name in files):
        files["channels/doc-default.yaml"] = DEFAULT_CHANNEL
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    write_certificates(files, directory)
    return directory / "engine.yaml"


TLS_FILES = ("tls_ca", "tls_cert", "tls_key")


def write_certificates(files: dict[str, str], directory: Path) -> None:
    """Write real throwaway PEM files at every TLS path of the channels that lies inside
    ``directory``: the CA at each ``tls_ca``, a server certificate and key for a source, a
    client one for a destination; and the shared record's (engine.yaml's
    ``shared_record.tls``: a server's); and the files of an xds destination's ``dmp:`` block
    (:func:`write_dmp_files`). Absolute paths elsewhere (``/etc/...``) are left alone."""
    root = directory.resolve()
    pki: dict[str, str] | None = None
    for option, value in _shared_record_tls(files.get("engine.yaml", "")):
        target = (directory / value).resolve()
        if os.path.isabs(os.path.expanduser(value)) or not target.is_relative_to(root):
            continue
        if pki is None:
            (directory / ".pki").mkdir(exist_ok=True)
            pki = make_pki(directory / ".pki")
        made = {"certificate": pki["server_cert"], "key": pki["server_key"],
                "ca": pki["ca"]}[option]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(made, target)
    for name, text in files.items():
        try:
            data = yaml.safe_load(text) if name.startswith("channels/") else None
        except yaml.YAMLError:
            continue
        if not isinstance(data, dict):
            continue
        destinations = data.get("destinations")
        connectors = [("server", data.get("source"))] + [
            ("client", item) for item in (destinations if isinstance(destinations, list) else [])]
        for role, options in connectors:
            if not isinstance(options, dict):
                continue
            if isinstance(options.get("dmp"), dict):
                write_dmp_files(options["dmp"], (directory / name).parent, root)
            for option in TLS_FILES:
                value = options.get(option)
                if not isinstance(value, str) or os.path.isabs(os.path.expanduser(value)):
                    continue
                target = ((directory / name).parent / value).resolve()
                if not target.is_relative_to(root):
                    continue
                if pki is None:
                    (directory / ".pki").mkdir(exist_ok=True)
                    pki = make_pki(directory / ".pki")
                made = {"tls_ca": pki["ca"], "tls_cert": pki[f"{role}_cert"],
                        "tls_key": pki[f"{role}_key"]}[option]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(made, target)


def write_dmp_files(block: dict, folder: Path, root: Path) -> None:
    """The files an xds destination's ``dmp:`` block names (under ``folder``, inside
    ``root``): the test PKI's structure certificate and key (tests/xds/dmp/pki.py), the CA as
    ``chain``, and the ANS value sets of the standards folder at ``value_sets``."""
    from tests.xds.dmp.pki import pki
    from tests.standards import standards_dir

    made = {"certificate": pki().structure.certificate_pem(), "key": pki().structure.key_pem(),
            "chain": pki().ca.certificate_pem()}
    for key, data in made.items():
        value = block.get(key)
        if isinstance(value, str) and (folder / value).resolve().is_relative_to(root):
            (folder / value).parent.mkdir(parents=True, exist_ok=True)
            (folder / value).write_bytes(data)
    value = block.get("value_sets")
    if isinstance(value, str) and (folder / value).resolve().is_relative_to(root):
        shutil.copytree(standards_dir() / "terminology" / "ans-jdv", folder / value,
                        dirs_exist_ok=True)


def _shared_record_tls(text: str) -> list[tuple[str, str]]:
    """(option, path) of the PEM files engine.yaml's ``shared_record.tls`` names."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    section = data.get("shared_record") if isinstance(data, dict) else None
    tls = section.get("tls") if isinstance(section, dict) else None
    if not isinstance(tls, dict):
        return []
    return [(option, tls[option]) for option in ("certificate", "key", "ca")
            if isinstance(tls.get(option), str)]


def check_config(example: Example, directory: Path) -> list[str]:
    """What ``check-config`` reports for ``example`` written in ``directory`` (nothing when it
    is valid): the loader's errors or, once the files load, the connectors' complaints."""
    try:
        loaded = load_config(write_example(example, directory))
    except ConfigError as error:
        return shown(str(error), directory).splitlines()
    return [shown(problem, directory) for problem in check_connectors(loaded, reactor)]


# A TLS file an example names outside its directory (/etc/aiguillage/tls/...) cannot be written
# by the test: building that connector is allowed to fail on it, and on nothing else.
_ELSEWHERE = re.compile(r"cannot load TLS files: .*'/[^']*'$")


def shown(text: str, directory: Path) -> str:
    """``text`` with the configuration's real directory written the way the pages write it."""
    text = text.replace(f"sqlite:///{directory}", f"sqlite:///{SHOWN_ROOT}")
    return text.replace(f"{directory}{os.sep}", "").replace(str(directory), SHOWN_ROOT)


ALL_EXAMPLES = {key: example for page in sorted(DOCS.glob("*.md"))
                for key, example in examples(page).items()}


def test_the_pages_have_examples() -> None:
    valid = [e for e in ALL_EXAMPLES.values() if e.valid]
    invalid = [e for e in ALL_EXAMPLES.values() if not e.valid]
    assert "channels.md:chu" in ALL_EXAMPLES
    assert len(valid) >= 5 and len(invalid) >= 5


@pytest.mark.parametrize("key", sorted(k for k, e in ALL_EXAMPLES.items() if e.valid))
def test_example_loads(key: str, tmp_path: Path) -> None:
    example = ALL_EXAMPLES[key]
    try:
        loaded = load_config(write_example(example, tmp_path))
    except ConfigError as error:
        pytest.fail(f"{example.where}: example {key} does not load:\n{shown(str(error), tmp_path)}")
    named = {name for name in example.files if name.startswith("channels/")}
    assert len(loaded.channels) >= len(named)
    problems = [shown(problem, tmp_path) for problem in check_connectors(loaded, reactor)]
    refused = [problem for problem in problems if not _ELSEWHERE.search(problem)]
    assert not refused, (f"{example.where}: check-config refuses example {key}:\n"
                         + "\n".join(refused))


@pytest.mark.parametrize("key", sorted(k for k, e in ALL_EXAMPLES.items() if not e.valid))
def test_invalid_example_is_refused_as_shown(key: str, tmp_path: Path) -> None:
    example = ALL_EXAMPLES[key]
    assert example.expected, f"{example.where}: an invalid example needs a ```text block after it"
    reported = check_config(example, tmp_path)
    assert reported, f"{example.where}: check-config accepts invalid example {key}"
    for line in example.expected:
        assert line in reported, (f"{example.where}: the page shows\n  {line}\nbut the loader "
                                  "says\n  " + "\n  ".join(reported))


def test_complete_example_has_the_values_the_page_describes(tmp_path: Path) -> None:
    loaded = load_config(write_example(ALL_EXAMPLES["channels.md:chu"], tmp_path))
    channels = {channel.name: channel for channel in loaded.channels}
    adt = channels["adt-gam"]
    assert adt.encoding == "8859/1" and adt.response.mode == "after-commit" and adt.dedupe
    archive, dpi = adt.destinations
    assert archive.connector.options["directory"] == str(tmp_path / "var" / "out" / "adt")
    assert (dpi.ordering.key, dpi.ordering.lanes) == ("patient", 8)
    waits = [dpi.retry.delay_for(n) for n in range(1, dpi.retry.max_attempts)]
    assert round(sum(waits) / 60) == 117  # "about 1 h 57 min before parking"
    oru = channels["oru-labo"]
    assert oru.destinations[0].ordering.lanes == 4  # the default with key: patient
    assert oru.source.options["tls_key"] == str(tmp_path / "tls" / "aiguillage.key")
    default = settings.RetryPolicy()
    assert round(sum(default.delay_for(n) for n in range(1, 10)) / 60, 1) == 8.5


def test_minimal_example_takes_the_defaults_the_page_describes(tmp_path: Path) -> None:
    loaded = load_config(write_example(ALL_EXAMPLES["channels.md:minimal"], tmp_path))
    (channel,) = loaded.channels
    assert channel.source.options["host"] == "127.0.0.1"
    assert (channel.response.mode, channel.encoding, channel.dedupe) == (
        "after-commit", "UNICODE UTF-8", True)
    (archive,) = channel.destinations
    assert archive.connector.options["filename"].format(channel="adt-urgences",
                                                        message_id=42) == \
        "adt-urgences-000000000042.hl7"
    assert (archive.retry, archive.ordering) == (settings.RetryPolicy(), settings.OrderingPolicy())


# -- the option tables of channels.md -------------------------------------------------------

def table_rows(page: Path, heading: str) -> dict[str, list[str]]:
    """Rows (first cell without backticks -> cells) of the first table under ``heading``."""
    text = page.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    level = heading.split(" ")[0]
    rest = text[start + len(heading) + 2:]
    stop = re.search(rf"^#{{2,{len(level)}}} ", rest, re.M)
    section = rest[:stop.start()] if stop else rest
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 4:
            rows.setdefault(cells[0].strip("`"), cells)
        elif rows and not line.startswith("|"):
            if line.strip():
                break
    return rows


SECTIONS = [
    ("## `engine.yaml`", cfg.ENGINE_SECTION.options),
    ("### `store`", cfg.STORE_SECTION.options),
    ("### `admin`", cfg.ADMIN_SECTION.options),
    ("## Channel files", cfg.CHANNEL_SECTION.options),
    ("### `response`", cfg.RESPONSE_SECTION.options),
    ("## Destinations", cfg.DESTINATION_SECTION.options),
    ("### `retry`", cfg.RETRY_SECTION.options),
    ("### `ordering`", cfg.ORDERING_SECTION.options),
    ("### `identity`", IDENTITY_SECTION.options),
    ("## The `identity:` step", STEP_SECTION.options),
] + [(f"## The `{name}` {role}", spec.options)
     for (role, name), spec in sorted(connector_specs().items())]


@pytest.mark.parametrize("heading, options", SECTIONS, ids=[s[0] for s in SECTIONS])
def test_option_tables_list_every_option_with_its_default(heading: str, options: tuple) -> None:
    """Each table names exactly the options the loader knows, with their real defaults."""
    rows = table_rows(DOCS / "channels.md", heading)
    assert set(rows) == {option.name for option in options}, heading
    for option in options:
        default_cell = rows[option.name][2]
        if option.required:
            assert default_cell == "required", (heading, option.name)
            continue
        if option.default is None or option.kind in ("mapping", "list"):
            assert default_cell, (heading, option.name)
            continue
        written = re.search(r"`([^`]*)`", default_cell).group(1)
        value = written if option.kind == "str" and not written.startswith('"') \
            else yaml.safe_load(written)
        assert convert(option.kind, value, "/") == convert(option.kind, option.default, "/"), (
            heading, option.name, default_cell)


# -- the command sessions of cli.md ---------------------------------------------------------

_DOCTEST = re.compile(r"<!-- doctest: (.*?) -->\s*\n```console\n(.*?)^```", re.M | re.S)


def sessions() -> list[tuple[str, dict[str, str], str]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in _DOCTEST.finditer(text):
            settings = dict(item.partition("=")[::2] for item in match.group(1).split())
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{page.name}:{line}", settings, match.group(2)))
    return found


SESSIONS = sessions()


def test_cli_page_has_sessions() -> None:
    assert len([s for s in SESSIONS if s[0].startswith("cli.md")]) >= 3


@pytest.mark.parametrize("where, settings, session", SESSIONS, ids=[s[0] for s in SESSIONS])
def test_cli_session(where: str, settings: dict, session: str, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    name = settings["example"]
    if name == "repo":
        directory = ROOT
    else:
        key = next((k for k in ALL_EXAMPLES if k.endswith(f":{name}")), None)
        assert key, f"{where}: no example named {name}"
        write_example(ALL_EXAMPLES[key], tmp_path)
        directory = tmp_path
    monkeypatch.chdir(directory)
    runner = CliRunner()
    result = None
    lines = session.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if line.startswith("$ echo $?"):
            assert result is not None, where
            assert result.exit_code == int(lines[index]), (
                f"{where}: exit {result.exit_code}, the page says {lines[index]}\n"
                f"{result.output}")
            index += 1
            continue
        if not line.startswith("$ aiguillage "):
            continue
        args = shlex.split(line[len("$ aiguillage "):].split("  #")[0])
        result = runner.invoke(main, args, prog_name="aiguillage", catch_exceptions=False)
        printed = []
        while index < len(lines) and not lines[index].startswith("$ "):
            printed.append(lines[index])
            index += 1
        if "output" in settings:
            actual = shown(result.output, directory).splitlines()
            for expected in printed:
                assert expected in actual, (f"{where}: `{line}` should print\n  {expected}\n"
                                            "but printed\n  " + "\n  ".join(actual))
