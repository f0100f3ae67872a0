"""
The ``response:`` block of a channel file: when the channel acknowledges, what its ACKs say,
and the return route of enhanced-mode application ACKs (``application-ack``), validated with
the file and line of each mistake into an :class:`engine.flow.response.ResponsePolicy`.

test-case-name: tests.config.test_links
"""
from __future__ import annotations

from typing import Any, Mapping

from engine.config.schema import Problems, Section, Where, key_position, validate_section
from engine.config.yamlsource import YAMLMapping
from engine.flow.response import (
    ACK_AFTER_COMMIT, APPLICATION_ACK, MODES as ACK_MODES, ON_ERROR_CODES, ON_FILTERED_CODES,
    ResponsePolicy, name_problem)
from engine.interfaces import ConnectorConfig, ConnectorSpec, OptionSpec

Specs = Mapping[tuple[str, str], ConnectorSpec]  # (role, type_name) -> spec

_NAME_HELP = "components separated by ^; default: the received "
RESPONSE_SECTION = Section(
    (OptionSpec("mode", "str", default="after-commit", choices=ACK_MODES),
     OptionSpec("on-error", "str", default="AE", choices=tuple(ON_ERROR_CODES),
                help="the ACK of a message processed into ERROR (after-processing)"),
     OptionSpec("on-filtered", "str", default="AA", choices=tuple(ON_FILTERED_CODES),
                help="the ACK of a message a filter dropped (after-processing)"),
     OptionSpec("sending-application", "str", help="MSH-3 of ACKs; " + _NAME_HELP + "MSH-5"),
     OptionSpec("sending-facility", "str", help="MSH-4 of ACKs; " + _NAME_HELP + "MSH-6"),
     OptionSpec("application-ack", "mapping",
                help="the return route of enhanced-mode application ACKs whose connection "
                     "has closed: an mllp destination's options (host, port, tls...)")),
    checks={"sending-application": name_problem, "sending-facility": name_problem})
RETURN_ROUTE_SECTION = Section((OptionSpec("type", "str", default="mllp", choices=("mllp",)),))


def response_policy(root: YAMLMapping, values: dict | None, specs: Specs, where: Where,
                    problems: Problems) -> ResponsePolicy | None:
    """The ``response:`` block; ``on-error`` and ``on-filtered`` written in after-commit mode,
    where the ACK leaves before there is an outcome to report, are refused, not ignored."""
    if not values:
        return None  # validate_section has reported why
    raw = root.get("response")
    if values["mode"] == ACK_AFTER_COMMIT and isinstance(raw, Mapping):
        here = where.child("response", root.key_position("response"))
        for key in ("on-error", "on-filtered"):
            if raw.get(key) is not None:
                problems.add(here.child(key, key_position(raw, key)),
                             f"{key} needs mode: after-processing: in {values['mode']} mode "
                             "the ACK is sent before the message is processed")
    if None in (values["mode"], values["on-error"], values["on-filtered"]):
        return None  # validate_section has reported why
    route = None
    if isinstance(raw, Mapping) and raw.get("application-ack") is not None:
        here = where.child("response", root.key_position("response"))
        route = return_route(raw["application-ack"], specs,
                             here.child("application-ack", key_position(raw, "application-ack")),
                             problems)
    return ResponsePolicy(values["mode"], values["on-error"], values["on-filtered"],
                          values["sending-application"], values["sending-facility"], route)


def return_route(data: Any, specs: Specs, where: Where,
                 problems: Problems) -> ConnectorConfig | None:
    """``response.application-ack``: an ``mllp`` destination (its options, ``type`` implied)
    that application ACKs take when their connection has closed (engine.flow.appack_route)."""
    spec = specs.get(("destination", "mllp"))
    if not isinstance(data, Mapping):
        return None  # validate_section has said it is not a mapping
    if spec is None:
        problems.add(where, "the return route is an mllp destination, and no mllp "
                            "destination type is registered")
        return None
    values = validate_section(data, RETURN_ROUTE_SECTION.extended(spec.options), where,
                              problems)
    if values is None:
        return None
    options = {o.name: values[o.name] for o in spec.options if o.name != "type"}
    return ConnectorConfig("mllp", APPLICATION_ACK, options, where.file, where.line)


__all__ = ["RESPONSE_SECTION", "RETURN_ROUTE_SECTION", "response_policy", "return_route"]
