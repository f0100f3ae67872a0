"""
``aiguillage xds``: query, retrieve from and submit to a shared record (an XDS.b registry and
repository named in engine.yaml's ``registries:``, :mod:`engine.config.registries`).

- ``xds query --registry NAME --patient CX [--type CODE] [--status S] [--json]``: ITI-18
  FindDocuments, a table of the patient's documents;
- ``xds retrieve --registry NAME UNIQUEID [--repository ID] [-o FILE]``: ITI-43, the
  document's size and SHA-1 checked against its metadata when the registry knows it;
- ``xds submit --registry NAME FILE``: ITI-41 of a CDA R2 document (metadata from its header,
  :mod:`xds.cda.submission`) or of an IHE XDM zip (each submission set, :mod:`xds.xdm`).

Files are read and checked before any connection is made; the exchanges run on Twisted
(``react``), :mod:`engine.cli.xds_calls`. Exit codes: 0 done, 1 refused (a SOAP fault, a
RegistryResponse Failure with its error codes, a hash mismatch, a hostile or invalid file),
2 usage or configuration, 3 the registry could not be reached.

test-case-name: tests.xds.test_xds_cli
"""
from __future__ import annotations

import json
import shutil
import sys
from typing import Any, Callable

import click

from engine.cli.main import EXIT_CONFIG, EXIT_FAILED, _load, config_option, main

registry_option = click.option("--registry", "registry_name", required=True,
                               help="a registry named in engine.yaml's registries:")


@main.group()
def xds() -> None:
    """The shared record (XDS.b): query, retrieve, submit."""


def _registry(config_path: str, name: str) -> Any:
    config = _load(config_path, lenient=True)
    registry = config.registries.get(name)
    if registry is None:
        known = ", ".join(sorted(config.registries)) or "none is configured"
        click.echo(f"{config_path}: no registry {name!r} in registries: (known: {known})",
                   err=True)
        sys.exit(EXIT_CONFIG)
    return registry


def run(operation: Callable[[Any], Any]) -> Any:
    """Run the coroutine ``operation(reactor)`` on the reactor until it ends; its result,
    or exit with the XDSCommandError's code and sentence."""
    from twisted.internet import defer, task

    from engine.cli.xds_calls import XDSCommandError

    outcome: dict = {}

    def main_(reactor: Any) -> defer.Deferred:
        done = defer.ensureDeferred(operation(reactor))
        return done.addCallbacks(lambda result: outcome.update(result=result),
                                 lambda failure: outcome.update(failure=failure))

    try:
        task.react(main_)
    except SystemExit as stopped:
        if stopped.code not in (0, None):
            raise
    failure = outcome.get("failure")
    if failure is not None:
        if failure.check(XDSCommandError):
            click.echo(failure.value.text, err=True)
            sys.exit(failure.value.exit_code)
        failure.raiseException()
    return outcome.get("result")


@xds.command("query")
@config_option
@registry_option
@click.option("--patient", required=True, metavar="'VALUE^^^&OID&ISO^NH'",
              help="the patient id of the affinity domain (XDS patientId)")
@click.option("--type", "types", multiple=True, metavar="CODE[^^SCHEME]",
              help="typeCode (LOINC unless a scheme is given); repeat for several")
@click.option("--status", type=click.Choice(["approved", "deprecated", "all"]),
              default="approved", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def query_command(config_path: str, registry_name: str, patient: str, types: tuple[str, ...],
                  status: str, as_json: bool) -> None:
    """A patient's documents in the registry (ITI-18 FindDocuments)."""
    from engine.cli.xds_calls import query
    from engine.cli.xds_views import documents_table, entry_dict, warnings

    registry = _registry(config_path, registry_name)
    response, documents = run(lambda reactor: query(reactor, registry, patient, list(types),
                                                    status))
    warnings(response)
    if as_json:
        click.echo(json.dumps([entry_dict(d) for d in documents], indent=2, ensure_ascii=False))
    elif documents:
        documents_table(documents)
    else:
        click.echo(f"no document of {patient} in registry {registry_name}")


@xds.command("retrieve")
@config_option
@registry_option
@click.argument("unique_id")
@click.option("--repository", help="the repository's uniqueId (default: from the document's "
                                   "metadata, else engine.yaml)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="write the document here (default: standard output)")
def retrieve_command(config_path: str, registry_name: str, unique_id: str,
                     repository: str | None, output: str | None) -> None:
    """One document (ITI-43), its size and hash checked against the registry's metadata."""
    from engine.cli.xds_calls import retrieve

    registry = _registry(config_path, registry_name)
    found = run(lambda reactor: retrieve(reactor, registry, unique_id, repository))
    try:
        if output:
            with open(output, "wb") as file:
                shutil.copyfileobj(_stream(found.content), file)
        else:
            shutil.copyfileobj(_stream(found.content), sys.stdout.buffer)
            sys.stdout.buffer.flush()
    finally:
        getattr(found.content, "close", lambda: None)()
    checked = ", ".join(found.checked) if found.checked else \
        "not checked: the registry has no metadata for it"
    target = f" to {output}" if output else ""
    click.echo(f"{unique_id}: {found.content.size} bytes{target} ({checked})", err=True)


def _stream(content: Any) -> Any:
    if hasattr(content, "open"):
        return content.open()
    import io

    return io.BytesIO(content.read_bytes())


@xds.command("submit")
@config_option
@registry_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--class-code", metavar="CODE^^SCHEME",
              help="classCode of a CDA (default: the registry's class_code)")
@click.option("--content-type", metavar="CODE^^SCHEME",
              help="contentTypeCode of the submission set (default: the registry's, else "
                   "the document's typeCode)")
def submit_command(config_path: str, registry_name: str, file: str, class_code: str | None,
                   content_type: str | None) -> None:
    """Send a CDA R2 document or an IHE XDM zip to the repository (ITI-41)."""
    from engine.cli.xds_calls import submit
    from engine.cli.xds_files import SubmitFileError, read_submissions
    from engine.cli.xds_views import warnings

    registry = _registry(config_path, registry_name)
    try:
        submissions = read_submissions(file, registry, class_code, content_type)
    except SubmitFileError as error:
        click.echo(f"{file}: {error}", err=True)
        sys.exit(EXIT_FAILED if not error.usage else EXIT_CONFIG)
    answers = run(lambda reactor: submit(reactor, registry, submissions))
    for (submission, documents), response in zip(submissions, answers):
        warnings(response)
        ids = ", ".join(entry.unique_id for entry in submission.documents)
        sets = ", ".join(s.unique_id for s in submission.submission_sets) or "?"
        click.echo(f"submitted to {registry_name}: submission set {sets}, "
                   f"{len(documents)} document(s): {ids}")
