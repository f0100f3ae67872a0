"""
Reading a connector's options against its own :class:`ConnectorSpec`, for every connector.

The configuration loader has already converted and defaulted what came from YAML, but a
connector is also built directly (by tests, by ``aiguillage send``, by code wiring a channel
without a file), so each one fills in its spec's defaults and refuses what it does not know
through this one function instead of scattering ``options.get(name, default)`` calls whose
defaults would drift from the spec. Defaults in the specs are therefore written already
converted (seconds as numbers, sizes as bytes), which the loader accepts as well.

Range checks that :class:`OptionSpec` cannot express stay in each connector, raising
:class:`ValueError` with :func:`label` in front so the engineer knows which connector spoke.

test-case-name: tests.channels.test_options
"""
from __future__ import annotations

from typing import Any, Mapping

from engine.interfaces import ConnectorSpec


def label(spec: ConnectorSpec, name: str) -> str:
    """How errors name a connector: ``destination "lab" (mllp)``."""
    return f'{spec.role} "{name}" ({spec.type_name})'


def resolve(spec: ConnectorSpec, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option of ``spec``, from ``options`` or its default; raise :class:`ValueError`.

    Refuses names the spec does not declare (a misspelt option silently ignored is how a TLS
    listener ends up in clear text), missing required options and values outside ``choices``.
    An explicit None counts as absent, as in YAML.
    """
    declared = {option.name: option for option in spec.options}
    unknown = sorted(set(options) - set(declared))
    if unknown:
        raise ValueError(f"{label(spec, name)}: unknown option(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(declared))}")
    values: dict[str, Any] = {}
    for option in spec.options:
        value = options.get(option.name)
        if value is None:
            if option.required:
                raise ValueError(f'{label(spec, name)}: missing required option "{option.name}"')
            value = option.default
        if option.choices and value is not None and value not in option.choices:
            listed = ", ".join(str(choice) for choice in option.choices)
            raise ValueError(f"{label(spec, name)}: {option.name} must be one of {listed}, "
                             f"got {value!r}")
        values[option.name] = value
    return values


def require_positive(spec: ConnectorSpec, name: str, values: Mapping[str, Any],
                     *option_names: str) -> None:
    """Refuse a zero or negative value for each of ``option_names`` (timeouts, sizes, counts)."""
    for option_name in option_names:
        value = values[option_name]
        if value is None or value <= 0:
            raise ValueError(f"{label(spec, name)}: {option_name} must be more than 0, "
                             f"got {value!r}")
