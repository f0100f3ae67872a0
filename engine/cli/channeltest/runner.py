"""
One message through one channel, exactly as the engine would process it, without network or
store: what ``aiguillage test-channel`` prints and what channel fixtures check.

An integration engineer develops a mapping test-first: write the message and the output
expected, run it, read which step changed what. For that to be worth anything the run must be
the engine's own, not a look-alike: the payload is read like the intake reads it
(:func:`mllp.header.read_header`, :func:`mllp.header.decode_payload`: an unreadable MSH or a
bad byte is an ERROR here as there), then handed to :func:`engine.flow.decision.decide`, the
engine's one decision, with the plan the engine builds (:func:`engine.app.channel_plan`) and a
trace, which it passes to :meth:`mappings.program.Program.run`. Nothing is stored and nothing is sent: each
destination's output is the text the engine would hand to its connector.

The result (:class:`ChannelRun`) holds the status (TRANSFORMED, FILTERED, ERROR), the reason,
one :class:`TracedStep` per top-level step that ran or was skipped (with the segments it
changed, before and after), and per destination the output text or why it is not sent.
:func:`run_lines` writes it for a terminal as :class:`Line` objects, whose ``kind`` tells the
CLI what to colour.

test-case-name: tests.cli.test_channeltest
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, NamedTuple

from engine.flow.decision import decide
from engine.flow.plan import InboundMessage
from engine import status as st
from engine.config.settings import ChannelConfig, EngineConfig
from mllp.header import EncodingError, HeaderError, decode_payload, read_header, resolve_codec

RAN, SKIPPED, STOPPED, FAILED = "ran", "skipped", "stopped", "failed"
_SEGMENT_END = re.compile(r"\r\n|\r|\n")


class UnknownChannel(LookupError):
    """A channel name the configuration does not have; the message lists those it has."""


@dataclass(frozen=True)
class TracedStep:
    """One top-level step of a run: a filter, a channel step, or a destination's step.

    ``destination`` is None for the channel's filters and steps. ``changes`` are the segments
    the step changed, as ``-``/``+`` lines (``- OBX|1|...`` before, ``+ OBX|1|...`` after).
    ``note`` is the stop reason or the failure's text.
    """

    destination: str | None
    label: str  # file:line: field, as errors name a step
    outcome: str  # RAN, SKIPPED, STOPPED or FAILED
    is_filter: bool = False
    note: str = ""
    changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DestinationOutput:
    """What one destination would be sent: ``text`` (decoded), or None and ``not_sent``."""

    name: str
    text: str | None
    not_sent: str = ""


@dataclass(frozen=True)
class ChannelRun:
    """The outcome of one message through one channel."""

    channel: str
    status: str  # TRANSFORMED, FILTERED or ERROR
    reason: str  # the error, the filter's reason or what was not sent; "" when none
    steps: tuple[TracedStep, ...]
    outputs: tuple[DestinationOutput, ...]
    answer: str | None = None  # what the sender gets instead of an ACK (a query's RSP)

    def output(self, destination: str) -> DestinationOutput:
        return next(output for output in self.outputs if output.name == destination)


class Line(NamedTuple):
    """A line for the terminal; ``kind`` (pass, fail, removed, added, heading, "") is how
    the CLI colours it, nothing else depends on it."""

    text: str
    kind: str = ""


def find_channel(config: EngineConfig, name: str) -> ChannelConfig:
    """The channel called ``name``; raise :class:`UnknownChannel` naming the known ones."""
    for channel in config.channels:
        if channel.name == name:
            return channel
    known = ", ".join(sorted(c.name for c in config.channels)) or "none"
    close = difflib.get_close_matches(name, [c.name for c in config.channels], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownChannel(f"{config.path}: no channel {name!r}{hint}; its channels: {known}")


def segments(text: str) -> list[str]:
    """The segments of a message's text, whatever ends them (CR, LF, CRLF)."""
    lines = _SEGMENT_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def run_payload(channel: ChannelConfig, payload: bytes, identity: Any = None) -> ChannelRun:
    """Run ``payload`` (a message's bytes as a sender sends them) through ``channel``;
    ``identity``: the hook of its ``identity:`` step
    (:class:`engine.cli.channeltest.scratch.ScratchIdentity`), None to leave it out."""
    # The composition root's own ChannelConfig -> ChannelPlan, so the plan is the engine's.
    from engine.app import channel_plan

    plan = channel_plan(channel, identity)
    try:
        header = read_header(payload)
        text = decode_payload(payload, header, plan.encoding)
    except (HeaderError, EncodingError) as error:  # stored in ERROR by the intake
        return _refused(channel, str(error))
    message = InboundMessage(
        0, text, header.field_separator, header.encoding_characters, payload,
        header.control_id, header.message_type, header.charset or plan.encoding)
    traced: list[TracedStep] = []
    result = decide(plan, message, lambda dest, step: traced.append(_traced(dest, step)))
    reason = result.error or result.detail or ""
    sent = {delivery.destination: delivery.payload for delivery in result.deliveries}
    outputs = []
    for destination in channel.destinations:
        if destination.name in sent:
            payload_out = sent[destination.name]
            out = text if payload_out is None else payload_out.decode(
                resolve_codec(message.charset))
            outputs.append(DestinationOutput(destination.name, out))
        else:
            outputs.append(DestinationOutput(destination.name, None, _why_not_sent(
                destination.name, result.status, traced)))
    answer = (None if result.response is None
              else result.response.decode(resolve_codec(message.charset), "replace"))
    return ChannelRun(channel.name, result.status, reason, tuple(traced), tuple(outputs),
                      answer)


def _refused(channel: ChannelConfig, reason: str) -> ChannelRun:
    outputs = tuple(DestinationOutput(d.name, None, "not sent: the message is in ERROR")
                    for d in channel.destinations)
    return ChannelRun(channel.name, st.ERROR, reason, (), outputs)


def _why_not_sent(name: str, status: str, traced: list[TracedStep]) -> str:
    stop = next((step for step in traced if step.destination == name
                 and step.outcome == STOPPED), None)
    if stop is not None:
        return f"not sent: stopped by its steps ({stop.label}): {stop.note}"
    if status == st.ERROR:
        return "not sent: the message is in ERROR"
    if status == st.FILTERED:
        return "not sent: the message is FILTERED"
    return "not sent: the route steps that ran did not name it"


def _traced(destination: str | None, trace: Any) -> TracedStep:
    """A :class:`mappings.program.StepTrace` as the tool shows it."""
    from mappings.stepkinds import FilterStep

    if trace.failure is not None:
        outcome, note = FAILED, str(trace.failure)
    elif trace.stopped is not None:
        outcome, note = STOPPED, trace.stopped
    else:
        outcome, note = (RAN if trace.ran else SKIPPED), ""
    changes = () if trace.before == trace.after else segment_changes(trace.before, trace.after)
    return TracedStep(destination, trace.label, outcome, isinstance(trace.step, FilterStep),
                      note, changes)


def segment_changes(before: str, after: str) -> tuple[str, ...]:
    """The segments that differ, ``- `` before and ``+ `` after; a segment changed in place
    shows its old line right above its new one."""
    old, new = segments(before), segments(after)
    lines: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        removed, added = old[i1:i2], new[j1:j2]
        if len(removed) == len(added):
            for one, other in zip(removed, added):
                lines += [f"- {one}", f"+ {other}"]
        else:
            lines += [f"- {one}" for one in removed] + [f"+ {one}" for one in added]
    return tuple(lines)


# -- for the terminal --------------------------------------------------------------------------

def run_lines(label: str, run: ChannelRun, *, show_output: bool = True,
              show_changes: bool = True) -> list[Line]:
    """``run`` of the message ``label`` written for a terminal: the status, each step, and
    each destination's output (``show_output``) or why it is not sent."""
    kind = "pass" if run.status == st.TRANSFORMED else "fail"
    lines = [Line(f"{label} -> {run.channel}: {run.status}", kind)]
    if run.reason:
        lines.append(Line(f"  {run.reason}"))
    lines += step_lines(run.steps, show_changes=show_changes)
    if run.answer is not None:
        lines.append(Line("  answered, instead of an ACK:", "heading"))
        lines += [Line(f"    {segment}") for segment in segments(run.answer)]
    for output in run.outputs:
        if output.text is None:
            lines.append(Line(f"  destination {output.name}: {output.not_sent}"))
        elif show_output:
            lines.append(Line(f"  destination {output.name}:", "heading"))
            lines += [Line(f"    {segment}") for segment in segments(output.text)]
        else:
            lines.append(Line(f"  destination {output.name}: sent"))
    return lines


def step_lines(steps: Iterable[TracedStep], *, show_changes: bool = True) -> list[Line]:
    """One line per step (where it is written and what it did), its changes under it."""
    lines = []
    for step in steps:
        where = "" if step.destination is None else f"[{step.destination}] "
        lines.append(Line(f"  {where}{step.label}: {_what_it_did(step)}",
                          "fail" if step.outcome == FAILED else ""))
        if show_changes:
            lines += [Line(f"      {change}", "removed" if change[0] == "-" else "added")
                      for change in step.changes]
    return lines


def _what_it_did(step: TracedStep) -> str:
    if step.outcome == FAILED:
        return f"FAILED: {step.note}"
    if step.outcome == STOPPED:
        return f"stopped: {step.note}"
    if step.outcome == SKIPPED:
        return "skipped (when: false)"
    if step.is_filter:
        return "passed"
    if not step.changes:
        return "ran, no change"
    added = sum(1 for change in step.changes if change[0] == "+")
    removed = len(step.changes) - added
    if added == removed:
        return f"ran, {added} segment(s) changed"
    return f"ran, {removed} segment(s) out, {added} in"


def channels_by_name(config: EngineConfig) -> Mapping[str, ChannelConfig]:
    return {channel.name: channel for channel in config.channels}
