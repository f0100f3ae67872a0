"""
Runs ``aiguillage send`` on a reactor of its own: the CLI is a short-lived client process.

test-case-name: tests.cli.test_main
"""
from __future__ import annotations

import sys
from typing import Any, Iterable

import click
from rich.progress import Progress

from engine.cli.sender import SendReport, messages_from_files, send_all
from engine.synthetic import message_stream
from mllp.client import MLLPClient

PROGRESS_FROM = 50  # messages: fewer are printed one by one, more get a progress bar


def _messages(files: Iterable[str], generate: int | None) -> list[tuple[str, bytes]]:
    loaded = list(messages_from_files(files))
    if generate:
        loaded += [(f"generated#{i + 1}", m) for i, m in
                   enumerate(message_stream(generate, start=_generation_start()))]
    return loaded


GENERATE_MAX = 100_000  # messages per --generate run: keeps each run's control ids apart


def _generation_start() -> int:
    """Distinct control ids on every run (one run a second at most), so that a second run is
    not taken for duplicates; MSH-10 stays within its 20 characters (``ADT`` + 15 digits)."""
    import time

    return int(time.time()) * GENERATE_MAX


def run_send(files: Iterable[str], host: str, port: int, *, generate: int | None,
             timeout: float, tls: dict | None, quiet: bool) -> SendReport:
    """Send every message and return the report (blocking: runs the reactor)."""
    from twisted.internet import reactor

    from mllp.tls import client_tls_options

    messages = _messages(files, generate)
    options = None
    if tls:
        options = client_tls_options(host, ca_path=tls.get("ca"), cert_path=tls.get("cert"),
                                     key_path=tls.get("key"))
    client = MLLPClient.for_address(reactor, host, port, options, ack_timeout=timeout,
                                    connect_timeout=timeout, reconnect_max=2.0)
    outcome: dict[str, Any] = {}
    use_bar = len(messages) >= PROGRESS_FROM and sys.stderr.isatty()
    progress = Progress(transient=True) if use_bar else None
    task = progress.add_task("sending", total=len(messages)) if progress else None

    def on_answer(label: str, answer: bytes | None, summary: str) -> None:
        if progress is not None:
            progress.advance(task)
        if not quiet and (progress is None or not summary.startswith(("AA", "CA"))):
            click.echo(f"{label}: {summary}")

    def go() -> None:
        d = send_all(client, messages, on_answer)
        d.addCallback(lambda report: outcome.update(report=report))
        d.addErrback(lambda failure: outcome.update(error=failure.getErrorMessage()))
        d.addBoth(lambda _: client.close())
        d.addBoth(lambda _: reactor.stop())

    if progress is not None:
        progress.start()
    reactor.callWhenRunning(go)
    reactor.run()
    if progress is not None:
        progress.stop()
    if "error" in outcome:
        raise click.ClickException(outcome["error"])
    return outcome["report"]
