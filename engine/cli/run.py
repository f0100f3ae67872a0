"""
``aiguillage run``: the engine in the foreground, alone or as the supervisor of its worker
and listener processes (engine.workers), until a signal stops it.

test-case-name: tests.cli.test_main
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from engine.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_UNREACHABLE, _load, config_option
from engine.config.settings import EngineConfig

@click.command()
@config_option
@click.option("--workers", type=click.IntRange(0, 256), default=None,
              help="delivery processes of their own (default: one per core beyond the "
                   "first; 0 or a single core: delivery runs in this process)")
@click.option("--listeners", type=click.IntRange(1, 256), default=1, show_default=True,
              help="processes taking in messages on the same MLLP ports (SO_REUSEPORT, Linux)")
@click.option("--role", type=click.Choice(["intake", "delivery"]),
              help="run only this role, in this process alone (no --workers/--listeners)")
@click.option("--reuse-port", is_flag=True,
              help="share the MLLP ports with other engine processes (SO_REUSEPORT)")
@click.option("--supervised", is_flag=True, hidden=True,
              help="a child of `run`: no admin listener, stop when the parent is gone")
def run(config_path: str, workers: int | None, listeners: int, role: str | None,
        reuse_port: bool, supervised: bool) -> None:
    """Run the engine until interrupted (Ctrl-C or SIGTERM stop it cleanly)."""
    from twisted.internet import reactor

    from engine.app import Engine
    from engine.workers.plan import run_plan, usable_cores

    from engine.filelimit import raise_open_file_limit
    from engine.heap import settle
    from engine.waker import unproxy

    config = _load(config_path, connectors=True)
    plan = run_plan(workers, listeners, role, reuse_port, usable_cores())
    _refuse_unshared_ports(config, plan)
    _start_logging(config, f"{'+'.join(plan.main_roles)} %(process)d" if supervised else None)
    if supervised:  # a child of `run`: it stops when its parent is gone
        from engine.workers.parent_watch import watch_parent

        watch_parent(reactor, lambda: _stop_quietly(reactor, "parent gone"))
    limits = raise_open_file_limit()  # before anything opens a socket
    if limits is not None and limits[0] != limits[1]:
        logging.getLogger("engine").info("open-file limit raised from %d to %d", *limits)
    engine = Engine(config, reactor, roles=plan.main_roles, reuse_port=plan.reuse_port,
                    serve_admin=not supervised)  # a child's parent holds the admin port
    supervisor = _supervisor(plan, config_path, reactor)
    outcome = {"code": 0}

    def started(_: Any) -> None:
        for name in engine.sources:
            port = engine.source_port(name)
            click.echo(f"channel {name}: listening on port {port}")
        if engine.shared_record is not None:
            base = engine.shared_record.base_url
            click.echo(f"shared record (XDS.b): {base}/repository and {base}/registry")
        if engine.admin_port is not None:
            address = engine.admin_port.getHost()
            click.echo(f"admin: http://{address.host}:{address.port}/status and /metrics")
        click.echo(f"aiguillage {config.node} running ({'+'.join(engine.roles)}, pid "
                   f"{os.getpid()}); store {config.store.url}")
        settle()  # start-up's objects out of the cyclic collector's way (engine.heap)
        unproxy()  # the reactor woken from threads without a deprecation proxy (engine.waker)
        if supervisor is not None:
            supervisor.start()
            click.echo(f"supervising {len(supervisor.children)} child process(es): "
                       + ", ".join(f"{n} pid {p}" for n, p in supervisor.pids().items()))

    def failed(failure: Any) -> None:
        click.echo(f"engine failed to start: {failure.getErrorMessage()}", err=True)
        outcome["code"] = EXIT_FAILED
        reactor.stop()

    def start() -> None:
        try:
            engine.start().addCallbacks(started, failed)
        except Exception as error:  # schema or store trouble, before anything listens
            click.echo(f"engine failed to start: {error}", err=True)
            outcome["code"] = EXIT_UNREACHABLE
            reactor.stop()

    _reload_on_sighup(engine, reactor, supervisor)  # before anything says it listens
    reactor.callWhenRunning(_stop_on_signals, reactor, supervised)
    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", engine.stop)
    if supervisor is not None:
        reactor.addSystemEventTrigger("before", "shutdown", supervisor.stop)
    reactor.run()
    sys.exit(outcome["code"])


def _start_logging(config: EngineConfig, tag: str | None) -> None:
    """Log at the configured level; a child's lines carry its role and pid (``tag``)."""
    from twisted.python import log as twisted_log

    where = f" [{tag}]" if tag else ""
    logging.basicConfig(level=config.log_level.upper(),
                        format=f"%(asctime)s %(levelname)s{where} %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    twisted_log.PythonLoggingObserver().start()


def _refuse_unshared_ports(config: EngineConfig, plan: Any) -> None:
    """Several listener processes need fixed MLLP ports: say which channel has port 0."""
    from engine.workers.plan import unshareable_ports

    if not plan.reuse_port:
        return
    problems = unshareable_ports((c.name, c.source.type_name, c.source.options.get("port"))
                                 for c in config.channels if c.enabled)
    if problems:
        click.echo(f"configuration errors ({len(problems)}):\n" + "\n".join(problems), err=True)
        sys.exit(EXIT_CONFIG)


def _supervisor(plan: Any, config_path: str, reactor: Any) -> Any:
    """The supervisor of ``plan``'s children, or None when this process runs alone."""
    from engine.workers.supervisor import Supervisor

    return Supervisor(reactor, plan.children, config_path) if plan.children else None


def _stop_on_signals(reactor: Any, supervised: bool = False) -> None:
    """SIGTERM and SIGINT stop the engine; another one while it stops only says so.

    Twisted's own handlers call ``reactor.stop()`` again on a second signal, which fails with
    a ReactorNotRunning traceback while the engine waits for a send under way (up to the
    destination's ``ack_timeout``) and its last commit. An impatient second Ctrl-C is common:
    it gets a plain answer and the clean stop goes on. Installed once the reactor runs, so
    that these handlers replace Twisted's.

    A ``supervised`` child ignores SIGINT: a Ctrl-C reaches the whole process group, and the
    child's supervisor already stops it with SIGTERM.
    """
    import signal

    def handler(signum: int, frame: Any) -> None:
        reactor.callFromThread(_stop_quietly, reactor, signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.SIG_IGN if supervised else handler)


def _stop_quietly(reactor: Any, why: str) -> None:
    """Stop the reactor (the engine's clean stop); only log when it already stops."""
    from twisted.internet.error import ReactorNotRunning

    try:
        reactor.stop()
    except ReactorNotRunning:
        logging.getLogger("engine").warning(
            "%s: already stopping, waiting for the sends under way and the last commit; "
            "SIGKILL stops at once (nothing acknowledged is lost)", why)
    else:
        logging.getLogger("engine").info("%s: stopping", why)


def _reload_on_sighup(engine: Any, reactor: Any, supervisor: Any = None) -> None:
    """SIGHUP reloads the channels (the report goes to the log, see engine.reload.reloader),
    in this process and in each child of its ``supervisor``.

    A signal handler may run between any two bytecodes of the reactor thread: it only
    schedules the reload for the reactor's next turn. Installed before the reactor runs, so
    that a SIGHUP sent once the engine says it listens never finds the default action
    (terminate); one arriving before the engine has started is refused, and logged.
    """
    import signal

    def reload() -> None:
        engine.reload()
        if supervisor is not None:
            supervisor.signal_all("HUP")

    def handler(signum: int, frame: Any) -> None:
        reactor.callFromThread(reload)

    signal.signal(signal.SIGHUP, handler)
