"""
The ``identity:`` step of a channel as the flow runs it: a :class:`engine.flow.hook.MessageHook`
over the store's patient index.

Built by the composition root for each channel with an ``identity:`` block
(:func:`identity_hooks`), from engine.yaml's ``identity:`` (domains, target, match model) and
the channel's settings. Its :meth:`IdentityHook.run` is called by
:func:`engine.flow.decision.decide` in a decider's worker thread (the plan is slow): there it
calls the index synchronously (:class:`identity.store.service.StoreIdentityIndex`, each call
one transaction), every change recorded with the message as its cause, and persists the
audit record of each query and feed message before the decision is committed, so that
nothing is disclosed without its record. The calls of all channels go through one lock:
the index's writes are serialised, as SQLite needs and as keeps two resolutions of the same
newcomer from both creating a person.

test-case-name: tests.identity.store.test_engine_hook
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any, Callable

from engine.config.identity import IdentityConfig, IdentityStepConfig, target_domains
from engine.flow.hook import HookOutcome
from identity.hl7.audit import AuditRecord
from identity.hl7.domains import DomainTable
from identity.hl7.response import Envelope
from identity.hl7.rewrite import TargetDomains
from identity.hl7.step import Fired, StepSettings, run_step, settled
from mllp.header import resolve_codec

Audit = Callable[[AuditRecord], None]

_counter = itertools.count(1)
_PREFIX = f"IX{os.getpid():x}"


def step_settings(config: IdentityConfig, step: IdentityStepConfig) -> StepSettings:
    """The step's settings with its domain names resolved against engine.yaml."""
    targets = target_domains(config, step)
    target = None
    if targets or step.ins_first:
        target = TargetDomains(targets, step.ins_first, step.keep_others)
    return StepSettings(DomainTable(config.domains), step.resolve, step.feed, target,
                        step.queries, step.query_limit)


class IdentityHook:
    """One channel's ``identity:`` step over a synchronous index (see the module docstring).

    ``index``: the synchronous index (its changes take ``cause=``); ``audit``: persists one
    :class:`AuditRecord` (blocking); ``lock``: shared by every channel's hook;
    ``sending_application`` and ``sending_facility``: MSH-3 and MSH-4 of a query's answer
    (the channel's ``response:`` names; empty: the query's MSH-5 and MSH-6).
    """

    def __init__(self, index: Any, settings: StepSettings, audit: Audit,
                 lock: threading.Lock, *, sending_application: str = "",
                 sending_facility: str = "") -> None:
        self._index = index
        self.settings = settings
        self._audit = audit
        self._lock = lock
        self._names = (sending_application, sending_facility)

    def run(self, message: Any, inbound: Any) -> HookOutcome:
        """What the index makes of ``message`` (blocking: a worker thread)."""
        envelope = Envelope(f"{_PREFIX}-{next(_counter)}", time.strftime("%Y%m%d%H%M%S"),
                            *self._names)
        cause = f"message:{inbound.message_id}"
        with self._lock:
            result = settled(run_step(Fired(self._index, cause), message, self.settings,
                                      envelope, inbound.peer))
            for record in result.audits:
                self._audit(record)
        answer = None
        if result.answer is not None:
            answer = result.answer.encode(_codec(message, inbound))
        if result.refused:
            first = result.errors[0]
            return HookOutcome(error=f"identity: {result.detail}", code=first.code,
                               location=first.location, answer=answer)
        detail = f"identity: {result.detail}" if result.detail else None
        warnings = tuple((w.code, w.text, w.location) for w in result.warnings)
        return HookOutcome(detail=detail, answer=answer, warnings=warnings)


def _codec(message: Any, inbound: Any) -> str:
    """The codec of the answer: the query's MSH-18, else what it was decoded with."""
    for name in (message.msh.get(18), getattr(inbound, "charset", None)):
        if name:
            try:
                return resolve_codec(name)
            except LookupError:
                continue
    return "utf-8"


class IdentityHooks:
    """The hooks of an engine's channels, over one index in ``store``'s database and one
    lock; ``config``: engine.yaml's :class:`IdentityConfig`. The index is opened at the
    first channel that has an ``identity:`` block (a reload may add one)."""

    def __init__(self, config: IdentityConfig, store: Any) -> None:
        self.config = config
        self._store = store
        self._lock = threading.Lock()
        self._index: Any = None
        self._audit: Audit | None = None

    def for_channel(self, channel: Any) -> IdentityHook | None:
        """The hook of ``channel`` (a ChannelConfig), None when it has no ``identity:``."""
        step = channel.identity
        if step is None:
            return None
        if self._index is None:
            self._open()
        response = channel.response
        return IdentityHook(self._index, step_settings(self.config, step), self._audit,
                            self._lock,
                            sending_application=response.sending_application or "",
                            sending_facility=response.sending_facility or "")

    def reconfigure(self, config: IdentityConfig) -> None:
        """Take engine.yaml's ``identity:`` as a reload read it: the hooks built from now on
        (:meth:`for_channel`) have its domains and target, the index its match model. The
        reload then gives the channels with an ``identity:`` step new plans; a decision under
        way finishes with the hook it started with."""
        self.config = config
        if self._index is not None:
            self._open()

    def index(self) -> Any:
        """The synchronous index (opened on first use), for the xds destinations' hooks."""
        if self._index is None:
            self._open()
        return self._index

    def _open(self) -> None:
        from identity.store.service import StoreIdentityIndex

        self._index = StoreIdentityIndex(self._store, self.config.model)
        self._audit = self._index.audit  # one transaction per record
