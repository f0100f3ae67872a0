"""
Consent in a message's decision: what an ADT says of its patient's opposition to sharing,
and whether a shared-record destination may receive a message for that patient.

A channel's ``consent:`` section (:class:`ConsentPlan`) names the field that carries the
opposition (PAM FR: ZFA-9, ``IO`` informed and opposed, ``INO`` informed and not opposed)
and which values oppose or withdraw; :func:`consent_change` reads it into a
:class:`~engine.store.records.ConsentChange`, committed with the decision. A destination
marked ``shared_record`` gets no delivery for a patient who opposed, whether the opposition
is in this very message or in the store (:func:`refusal`, through the plan's
:class:`~engine.interfaces.ConsentLookup`, which reads the store and so runs only in the
decider's worker threads: such a plan is slow, :attr:`engine.flow.plan.ChannelPlan.slow`).
The message is kept, its other destinations served, and the reason written on its journal.

The patient is every PID-3 repetition (CX.1 with CX.4.2, or CX.4.1 when no OID is given).

test-case-name: tests.flow.test_consent
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from engine.store.consent import SHARED_RECORD
from engine.store.records import ConsentChange

PAM_FR_OPPOSITION = "ZFA-9"  # information/opposition to feeding the DMP (NOTES.md §3.4)
PAM_FR_OPPOSED = ("IO",)  # informed, opposed
PAM_FR_NOT_OPPOSED = ("INO",)  # informed, not opposed: an earlier opposition is withdrawn
PATIENT_FIELD = "PID-3"


@dataclass(frozen=True)
class ConsentPlan:
    """Where a channel's messages carry their patient's opposition, and what it means.

    ``opposition`` is a compiled :class:`mappings.pathsyntax.Path` (None: the channel reads
    no opposition, only checks it); ``patient`` the path of the CX field listing the
    patient's identifiers.
    """

    opposition: Any = None
    opposed: frozenset[str] = frozenset(PAM_FR_OPPOSED)
    withdrawn: frozenset[str] = frozenset(PAM_FR_NOT_OPPOSED)
    scope: str = SHARED_RECORD
    patient: Any = None  # a mappings Path; None: PID-3


def patient_identifiers(parsed: Any, patient: Any = None) -> tuple[tuple[str, str], ...]:
    """(domain, value) of each repetition of the patient field (PID-3 by default)."""
    name, number = (patient.segment, patient.field) if patient is not None else ("PID", 3)
    segment = parsed.segment(name)
    if segment is None:
        return ()
    found = []
    for repetition in range(1, len(segment.repetitions(number)) + 1):
        value = segment.get(number, repetition, 1).strip()
        domain = (segment.get(number, repetition, 4, 2)
                  or segment.get(number, repetition, 4, 1)).strip()
        if value and domain:
            found.append((domain, value))
    return tuple(dict.fromkeys(found))


def consent_change(plan: ConsentPlan, parsed: Any) -> ConsentChange | None:
    """What the message says of its patient's opposition: an opposition, a withdrawal, or
    None (the field is empty or holds another value, ``NA`` "not collected")."""
    if plan.opposition is None:
        return None
    from mappings.paths import get_one

    value = (get_one(parsed, plan.opposition) or "").strip()
    opposed = value in plan.opposed
    if not opposed and value not in plan.withdrawn:
        return None
    identifiers = patient_identifiers(parsed, plan.patient)
    if not identifiers:
        return None
    return ConsentChange(identifiers, plan.scope, opposed, f"{plan.opposition} = {value}")


def refusal(plan: ConsentPlan | None, lookup: Any, parsed: Any,
            change: ConsentChange | None) -> str | None:
    """Why a shared-record destination gets no delivery of this message, or None.

    The message's own word comes first (an opposition refuses, a withdrawal allows); else
    the store's, through ``lookup`` (None, in ``aiguillage test-channel``: not looked up).
    """
    scope = plan.scope if plan is not None else SHARED_RECORD
    if change is not None and change.scope == scope:
        if change.opposed:
            return f"consent: this message records the patient's opposition ({change.reason})"
        return None
    if lookup is None:
        return None
    identifiers = patient_identifiers(parsed, plan.patient if plan is not None else None)
    return stored_refusal(lookup, identifiers, scope)


def cx_identifiers(patient_id: str) -> tuple[tuple[str, str], ...]:
    """(domain OID, value) of an XDS patientId in CX form (``value^^^&OID&ISO``), the
    patient of a document that has no PID; () when it names no assigning authority."""
    components = patient_id.split("^")
    value = components[0].strip()
    authority = components[3].split("&") if len(components) > 3 else []
    domain = (authority[1] if len(authority) > 1 else authority[0] if authority else "").strip()
    return ((domain, value),) if value and domain else ()


def stored_refusal(lookup: Any, identifiers: Sequence[tuple[str, str]],
                   scope: str = SHARED_RECORD) -> str | None:
    """Why a shared-record destination gets nothing for the patient holding ``identifiers``,
    by the store's record of their opposition (read off the reactor thread), or None."""
    found = lookup.opposition(identifiers, scope) if identifiers else None
    if found is None:
        return None
    since = datetime.fromtimestamp(found.since, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    why = f"; {found.reason}" if found.reason else ""
    return (f"consent: patient {found.value}^^^&{found.domain}&ISO opposed to {found.scope} "
            f"since {since} ({found.cause}{why})")
