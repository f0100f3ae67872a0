"""
Reading ``transform:`` of a channel and of each destination into the
:class:`mappings.transforms.chain.TransformChain` the flow applies, checked at load.

A channel's transform applies to every destination, after the steps; a destination's own
transform follows the channel's (``oru-to-cda`` on the channel, ``cda-to-xds`` on one
destination). Each is a mapping, ``{name: …, option: …}``; the names are the built-in ones
of :data:`mappings.transforms.registry.TRANSFORMS` and those needing ``xds/``
(:data:`engine.config.xds_transforms.XDS_TRANSFORMS`). A wrong name, option, table or an
order that cannot work (an HL7 v2 transform after one that made XML) is reported at the
``transform:`` line, with every other problem of the load.

test-case-name: tests.config.test_transforms
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from engine.config.schema import Problems, Where, item_position, key_position
from engine.config.xds_transforms import XDS_TRANSFORMS
from engine.interfaces import OptionSpec
from mappings.transforms.chain import chain
from mappings.transforms.registry import TRANSFORMS, TransformConfigError, build_transform

__all__ = ["TRANSFORM_OPTION", "read_transforms"]

TRANSFORM_OPTION = OptionSpec(
    "transform", "mapping",
    help="a built-in transform applied after the steps: {name: oru-to-cda | mdm-to-xds | "
         "cda-to-xds, options...}")
ALL_TRANSFORMS = {**TRANSFORMS, **XDS_TRANSFORMS}


def read_transforms(root: Mapping, values: Mapping, where: Where, tables: Mapping,
                    destinations: tuple, problems: Problems) -> tuple[Any, tuple]:
    """(the channel's transform, its destinations each with the chain it applies)."""
    own = _one(values.get("transform"), where.child("transform", key_position(root, "transform")),
               tables, problems)
    if values.get("transform") is not None and own is None:
        return None, destinations  # its problem is reported; chaining to it would repeat it
    items = root.get("destinations")
    items = items if isinstance(items, list) else []
    here = where.child("destinations", key_position(root, "destinations"))
    places = {item.get("name"): (index, item) for index, item in enumerate(items)
              if isinstance(item, Mapping)}
    chained = []
    for destination in destinations:
        index, item = places.get(destination.name, (0, {}))
        at = here.item(index, item_position(items, index)).child(
            "transform", key_position(item, "transform"))
        mine = _one(item.get("transform"), at, tables, problems)
        try:
            chained.append(replace(destination, transform=chain(own, mine)))
        except TransformConfigError as error:
            problems.add(at, str(error))
            chained.append(destination)
    return own, tuple(chained)


def _one(raw: Any, at: Where, tables: Mapping, problems: Problems) -> Any:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.add(at, "expected a mapping such as {name: oru-to-cda}")
        return None
    try:
        return _build(raw, tables)
    except TransformConfigError as error:
        problems.add(at, str(error))
        return None


def _build(raw: Mapping, tables: Mapping) -> Any:
    name = raw.get("name")
    factory = ALL_TRANSFORMS.get(name) if isinstance(name, str) else None
    if factory is None and isinstance(name, str) and name not in TRANSFORMS:
        raise TransformConfigError(f"unknown transform {name!r}; the transforms are "
                                   f"{', '.join(sorted(ALL_TRANSFORMS))}")
    if name in XDS_TRANSFORMS:
        return factory({key: value for key, value in raw.items() if key != "name"}, tables)
    return build_transform(raw, tables)

