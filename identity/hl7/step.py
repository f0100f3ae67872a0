"""
The ``identity:`` step of a channel: one message against the patient index.

What a message asks depends on what it is and on the step's settings:

* a query (``queries``): ``QBP^Q23`` (PIX, ITI-9) and ``QBP^Q22`` (PDQ, ITI-21) are answered
  (:mod:`identity.hl7.queries`); ``QCN^J01`` cancels a PDQ continuation, which is stateless
  here (:mod:`identity.hl7.pdq`), so it is acknowledged AA; another QBP is refused (AE 201);
* an ADT event of the feed (``feed``, ITI-8): planned by :func:`identity.hl7.adt.plan_adt`
  and run by :func:`identity.hl7.feed.apply_plan`, all or nothing;
* any other message (``resolve``): its first PID is registered, which the matcher resolves
  (created, linked, kept for review);

then, with ``target`` (``rewrite-pid3``), PID-3 is rewritten for the destinations
(:mod:`identity.hl7.rewrite`): a person with nothing the target wants is an error. What
cannot be done is an error naming what and where (the ERR of the application ACK); every
query and every feed message leaves an :class:`~identity.hl7.audit.AuditRecord`.

The service is the Deferred :class:`~identity.service.IdentityService`; the engine runs
this in a worker thread with a synchronous index behind :class:`Fired`, whose Deferreds
have fired when returned, so that :func:`run_step` answers at once there too.

test-case-name: tests.identity.hl7.test_step
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from twisted.internet import defer

from identity.hl7 import adt
from identity.hl7.audit import AuditRecord, feed_audit
from identity.hl7.domains import DomainTable
from identity.hl7.feed import apply_plan
from identity.hl7.pdq import DEFAULT_LIMIT
from identity.hl7.pid import read_pid
from identity.hl7.queries import answer_pdq, answer_pix
from identity.hl7.response import Envelope, new_response, wire_text
from identity.hl7.rewrite import TargetDomains, person_of, rewrite_pid3
from identity.service import Registered, Registration
from mappings.message import HL7Message
from mllp.ack import HL7Error
from mllp.codes import (
    APPLICATION_ACCEPT,
    APPLICATION_ERROR,
    SEGMENT_SEQUENCE,
    UNKNOWN_KEY,
    UNSUPPORTED_EVENT,
)

PIX_EVENT, PDQ_EVENT, CANCEL = "Q23", "Q22", ("QCN", "J01")
CANCEL_RESPONSE_TYPE = "ACK^J01^ACK"


@dataclass(frozen=True, slots=True)
class StepSettings:
    """What a channel's ``identity:`` step does (engine.config.identity, resolved)."""

    domains: DomainTable
    resolve: bool = True
    feed: bool = False
    target: TargetDomains | None = None
    queries: bool = False
    query_limit: int = DEFAULT_LIMIT


@dataclass(frozen=True, slots=True)
class StepResult:
    """What the step did: the person concerned, a journal line, or the errors; a query's answer."""

    detail: str
    person_id: str | None = None
    errors: tuple[HL7Error, ...] = ()
    answer: str | None = None  # the response text (RSP^K23, RSP^K22, ACK^J01)
    audits: tuple[AuditRecord, ...] = ()
    warnings: tuple[HL7Error, ...] = ()  # went through, but kept for review: why (severity W)

    @property
    def refused(self) -> bool:
        return bool(self.errors)


CHANGES = frozenset({"register", "merge", "unmerge", "link", "unlink", "change_identifier"})


class Fired:
    """A synchronous index seen as an :class:`IdentityService`: each call made at once,
    its answer (or its exception) in an already-fired Deferred.

    ``cause``, when given, is passed to every call that changes the index (the store's
    index records why each change was made: ``message:<id>``)."""

    def __init__(self, index: Any, cause: str | None = None) -> None:
        self._index = index
        self._cause = cause

    def __getattr__(self, name: str) -> Callable[..., defer.Deferred]:
        method = getattr(self._index, name)
        extra = {"cause": self._cause} if self._cause is not None and name in CHANGES else {}

        def call(*args: Any, **kwargs: Any) -> defer.Deferred:
            return defer.maybeDeferred(method, *args, **kwargs, **extra)

        return call


def settled(d: defer.Deferred) -> Any:
    """The result of a Deferred that has fired (raising its failure); one that has not is a
    service that is not synchronous, a wiring mistake."""
    outcome: list = []
    d.addBoth(outcome.append)
    if not outcome:
        raise RuntimeError("the identity service answered later: the step needs a "
                           "synchronous index (identity.hl7.step.Fired)")
    if isinstance(outcome[0], defer.Failure):
        outcome[0].raiseException()
    return outcome[0]


@defer.inlineCallbacks
def run_step(service: Any, message: HL7Message, settings: StepSettings,
             envelope: Envelope, peer: str):
    """A Deferred of the :class:`StepResult` of ``message`` (see the module docstring)."""
    code, event = message.msh.get(9, 1, 1), message.msh.get(9, 1, 2)
    if settings.queries and code in ("QBP", "QCN"):
        return (yield _query(service, message, settings, envelope, peer, code, event))
    if settings.feed and code == "ADT" and event in adt.EVENTS:
        result = yield _feed(service, message, settings, envelope, peer)
    elif settings.resolve:
        result = yield _resolve(service, message, settings)
    else:
        result = StepResult("")
    if result.refused or settings.target is None:
        return result
    return (yield _rewrite(service, message, settings.target, settings.domains, result))


@defer.inlineCallbacks
def _query(service, message, settings, envelope, peer, code, event):
    if (code, event) == CANCEL:
        response = new_response(message, CANCEL_RESPONSE_TYPE, APPLICATION_ACCEPT, "OK", (),
                                envelope)
        return StepResult("PDQ continuation cancelled (nothing is kept between pages)",
                          answer=_ack_only(response))
    if event == PIX_EVENT:
        answered = yield answer_pix(service, message, settings.domains, envelope, peer)
    elif event == PDQ_EVENT:
        answered = yield answer_pdq(service, message, settings.domains, envelope, peer,
                                    settings.query_limit)
    else:
        error = HL7Error(UNSUPPORTED_EVENT, f"MSH-9: {code}^{event} is not a PIX (Q23) or "
                         "PDQ (Q22) query", "MSH^1^9^1^2")
        response = new_response(message, f"RSP^{event}", APPLICATION_ERROR, "AE", (error,),
                                envelope)
        return StepResult(error.text, errors=(error,), answer=wire_text(response))
    audit = answered.audit
    kind = "PIX" if event == PIX_EVENT else "PDQ"
    detail = (f"{kind} query {audit.query_tag}: {audit.outcome}, "
              f"{len(audit.persons)} person(s), {len(audit.identifiers)} identifier(s) disclosed")
    errors = _refusals(answered.text) if audit.outcome == "AE" else ()
    return StepResult(detail, audit.persons[0] if audit.persons else None, errors,
                      answered.text, (audit,))


def _refusals(text: str) -> tuple[HL7Error, ...]:
    """The ERR segments of a refusing RSP, read back (their code, location and text)."""
    found = []
    for err in HL7Message.parse(text).segments("ERR"):
        location = "^".join(p for p in (err.get(2, 1, n) for n in range(1, 7)) if p)
        code = err.get(3, 1, 1)
        found.append(HL7Error(int(code) if code.isdigit() else UNKNOWN_KEY,
                              err.get(8) or "query refused", location))
    return tuple(found) or (HL7Error(UNKNOWN_KEY, "query refused"),)


def _ack_only(response: HL7Message) -> str:
    """ACK^J01: the frame of :func:`new_response` without QAK and QPD."""
    kept = [s for s in response.segments() if s.name not in ("QAK", "QPD")]
    return "\r".join(s.text() for s in kept) + "\r"


@defer.inlineCallbacks
def _feed(service, message, settings, envelope, peer):
    plan = adt.plan_adt(message, settings.domains)
    outcome = yield apply_plan(service, plan)
    persons = [_person_id(r) for r in outcome.results if _person_id(r)]
    audit = feed_audit(message, outcome.ack_code, envelope.timestamp, peer, persons)
    notes = "; ".join(outcome.notes)
    if outcome.errors:
        return StepResult(_errors_text(outcome.errors), persons[0] if persons else None,
                          outcome.errors, audits=(audit,))
    done = ", ".join(_did(plan.commands[i], r) for i, r in enumerate(outcome.results))
    detail = f"ADT^{plan.event}: {done}" + (f" (review: {notes})" if notes else "")
    warnings = tuple(e for e in outcome.ack_errors if e.severity == "W")
    warnings = warnings or _review_warnings(outcome.results)  # the reasons, else the matcher's
    return StepResult(detail, persons[-1] if persons else None, audits=(audit,),
                      warnings=warnings)


@defer.inlineCallbacks
def _resolve(service, message, settings):
    pids = message.segments("PID")
    if not pids:
        error = HL7Error(SEGMENT_SEQUENCE, "no PID segment: no patient to resolve", "PID")
        return StepResult(error.text, errors=(error,))
    identity = read_pid(pids[0], settings.domains)
    if not identity.ok:
        return StepResult(_errors_text(identity.errors), errors=identity.errors)
    registration = yield service.register(identity.identifiers, identity.traits,
                                          identity.review_reasons)
    return StepResult(_registered(registration), registration.person_id,
                      warnings=_review_warnings((registration,)))


@defer.inlineCallbacks
def _rewrite(service, message, target, domains, result):
    pids = message.segments("PID")
    if not pids:
        return result
    identity = read_pid(pids[0], domains)
    person = yield person_of(service, identity.identifiers)
    if person is None:
        error = HL7Error(UNKNOWN_KEY, "PID-3: no person of the index holds these identifiers: "
                         "nothing to rewrite PID-3 with", "PID^1^3")
        return StepResult(error.text, result.person_id, (error,), audits=result.audits)
    rewritten = rewrite_pid3(message, person, target)
    if rewritten.problem is not None:
        error = HL7Error(UNKNOWN_KEY, f"PID-3 cannot be rewritten: {rewritten.problem}",
                         "PID^1^3")
        return StepResult(error.text, person.person_id, (error,), audits=result.audits)
    written = ", ".join(f"{i.value}@{i.domain.namespace or i.domain.oid}"
                        for i in rewritten.written)
    return StepResult(f"{result.detail}; PID-3 rewritten: {written}".lstrip("; "),
                      person.person_id, audits=result.audits, warnings=result.warnings)


def _review_warnings(results: tuple) -> tuple[HL7Error, ...]:
    """A warning (ERR severity W at PID-3) for each registration the matcher kept for review."""
    return tuple(HL7Error(0, f"person {r.person_id} kept for review: "
                          f"{', '.join(r.review_reasons) or 'a possible duplicate'}", "PID^1^3",
                          severity="W")
                 for r in results if isinstance(r, Registration) and r.outcome is Registered.REVIEW)


def _registered(registration: Registration) -> str:
    text = f"person {registration.person_id} {registration.outcome.value}"
    if registration.review_reasons:
        text += f" (review: {', '.join(registration.review_reasons)})"
    return text


def _did(command: Any, result: Any) -> str:
    """One command's outcome, for the journal."""
    if isinstance(result, Registration):
        return _registered(result)
    verb = {adt.Merge: "merged into", adt.Link: "linked as", adt.Unlink: "unlinked",
            adt.ChangeIdentifier: "identifier changed on"}.get(type(command), "done on")
    return verb if result is None else f"{verb} person {result}"


def _person_id(result: Any) -> str | None:
    if isinstance(result, Registration):
        return result.person_id
    return str(result) if isinstance(result, (str, int)) else None


def _errors_text(errors: tuple[HL7Error, ...]) -> str:
    return "; ".join(e.text or e.location for e in errors)
