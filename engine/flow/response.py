"""
What a channel's acknowledgements say: the ``response:`` block of a channel file.

The ACK is the one thing a sending system reads back, and integration engineers are asked to
tune it per sender, as Mirth's and HAPI's response settings let them: some systems resend
forever on AE and must get AR for a message that will never pass, some treat anything but AA
as an alarm and some want one, some check MSH-3/MSH-4 of the answer against a name of their
own. A :class:`ResponsePolicy` holds those choices; the intake asks it which outcome
(:data:`mllp.ack.ACCEPT`, ``ERROR``, ``REJECT``) each case gets, and :func:`mllp.ack.ack_code`
turns the outcome into a code in the message's acknowledgement mode. A sender that asked for
enhanced mode (MSH-15/16) gets the accept ACK (CA) at commit whatever the mode, and the
outcome of processing, in the policy's codes (``on-error: AR``), in its application ACK
(:mod:`engine.flow.appack`), which goes back on the connection or by ``application_ack``,
the return route.

``on-error`` and ``on-filtered`` only exist in ``after-processing`` mode: in ``after-commit``
mode the ACK leaves before the pipeline has run, so there is no outcome to report.

test-case-name: tests.flow.test_intake_response
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mllp import ack

APPLICATION_ACK = "application-ack"  # the engine's destination of enhanced-mode application ACKs

ACK_AFTER_COMMIT = "after-commit"
ACK_AFTER_PROCESSING = "after-processing"
MODES = (ACK_AFTER_COMMIT, ACK_AFTER_PROCESSING)

# The codes a policy may ask for, as written in channel files (original mode), and the
# outcome each stands for.
ON_ERROR_CODES = {ack.APPLICATION_ERROR: ack.ERROR, ack.APPLICATION_REJECT: ack.REJECT}
ON_FILTERED_CODES = {ack.APPLICATION_ACCEPT: ack.ACCEPT, ack.APPLICATION_ERROR: ack.ERROR}

# Characters an application or facility name cannot hold: they would end a field or a segment
# whatever the sender's separators. ``^`` separates components (``NAME^OID^ISO``), and is
# written with the sender's own component separator.
_FORBIDDEN_IN_NAMES = "|~\\&\r\n"


@dataclass(frozen=True)
class ResponsePolicy:
    """When a channel acknowledges and what its ACKs say.

    ``on_error`` answers a message the pipeline put in ERROR, ``on_filtered`` one a filter or
    a ``stop`` step dropped (both after processing only). ``sending_application`` and
    ``sending_facility`` are MSH-3 and MSH-4 of every ACK of the channel, components
    separated by ``^``; None echoes the received MSH-5 and MSH-6.
    """

    mode: str = ACK_AFTER_COMMIT
    on_error: str = ack.APPLICATION_ERROR
    on_filtered: str = ack.APPLICATION_ACCEPT
    sending_application: str | None = None
    sending_facility: str | None = None
    # Where enhanced-mode application ACKs go when their connection has closed: the
    # ConnectorConfig of an mllp destination (``response.application-ack``), or None.
    application_ack: Any = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.on_error not in ON_ERROR_CODES:
            raise ValueError(f"on-error must be AE or AR, not {self.on_error!r}")
        if self.on_filtered not in ON_FILTERED_CODES:
            raise ValueError(f"on-filtered must be AA or AE, not {self.on_filtered!r}")
        for value in (self.sending_application, self.sending_facility):
            problem = None if value is None else name_problem(value)
            if problem:
                raise ValueError(problem)

    @property
    def after_processing(self) -> bool:
        return self.mode == ACK_AFTER_PROCESSING

    @property
    def error_outcome(self) -> str:
        """The outcome (``ack.ERROR`` or ``ack.REJECT``) for a message processed into ERROR."""
        return ON_ERROR_CODES[self.on_error]

    @property
    def filtered_outcome(self) -> str:
        """The outcome (``ack.ACCEPT`` or ``ack.ERROR``) for a message that was FILTERED."""
        return ON_FILTERED_CODES[self.on_filtered]


def name_problem(value: str) -> str | None:
    """What makes ``value`` unusable as MSH-3 or MSH-4 of an ACK, or None."""
    if not value.strip():
        return "expected a name, got an empty string"
    bad = sorted({char for char in value if char in _FORBIDDEN_IN_NAMES})
    if bad:
        shown = ", ".join(repr(char) for char in bad)
        return (f"{shown} cannot be written in MSH-3/MSH-4; separate components with ^ "
                '(e.g. "AIGUILLAGE^1.2.250.1.999.1^ISO")')
    return None


__all__ = ["ACK_AFTER_COMMIT", "ACK_AFTER_PROCESSING", "MODES", "ON_ERROR_CODES",
           "ON_FILTERED_CODES", "ResponsePolicy", "name_problem"]
