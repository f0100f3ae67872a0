"""
Transforms one after the other: what a channel's ``transform:`` and then a destination's
own ``transform:`` make of one message, as the flow applies them.

Why a chain: a channel turns its ORU^R01 into a CDA once (``oru-to-cda``) and each
destination takes it from there, one as it is, another as an XDS submission
(``cda-to-xds``). What each transform accepts is checked when the chain is built, at load:
a transform of HL7 v2 after one that made XML is refused then, not on every message.

test-case-name: tests.config.test_transforms
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mappings.transforms.registry import HL7V2, MessageTransform, TransformConfigError

__all__ = ["TransformChain", "TransformFailed", "chain"]


class TransformFailed(ValueError):
    """A transform could not make its document of this message; names it and says why."""


@dataclass(frozen=True)
class TransformChain:
    """Transforms applied in order to a parsed message; the last one's ``media_type``."""

    transforms: tuple[MessageTransform, ...]

    @property
    def name(self) -> str:
        return " then ".join(transform.name for transform in self.transforms)

    @property
    def media_type(self) -> str:
        return self.transforms[-1].media_type

    def apply(self, message: Any, made: dict | None = None) -> bytes:
        """The document the chain makes of ``message`` (an ``HL7Message``), or raise
        :class:`TransformFailed` naming the transform that refused it.

        ``made``, shared by the chains of one message's destinations, keeps what each
        leading run of transforms made of it: the channel's transform runs once, not once
        per destination. Transforms never change their input, so this is safe.
        """
        value = message
        for index, transform in enumerate(self.transforms):
            key = (id(message), *(id(t) for t in self.transforms[:index + 1]))
            if made is not None and key in made:
                value = made[key]
                continue
            try:
                value = transform.apply(value)
            except ValueError as error:  # each transform's own error says what and where
                raise TransformFailed(f"transform {transform.name!r}: {error}") from None
            if made is not None:
                made[key] = value
        return value


def chain(*parts: MessageTransform | TransformChain | None) -> TransformChain | None:
    """The chain of ``parts`` in order (None parts left out), or None when there is none;
    raise :class:`TransformConfigError` when one does not accept what the previous makes."""
    transforms: list[MessageTransform] = []
    for part in parts:
        if part is not None:
            transforms.extend(part.transforms if isinstance(part, TransformChain) else [part])
    if not transforms:
        return None
    given = HL7V2
    for transform in transforms:
        if transform.accepts != given:
            made = "the HL7 v2 message" if given == HL7V2 else f"a {given} document"
            wanted = "an HL7 v2 message" if transform.accepts == HL7V2 \
                else f"a {transform.accepts} document"
            raise TransformConfigError(f"transform {transform.name!r} takes {wanted}, but it "
                                       f"would be given {made}")
        given = transform.media_type
    return TransformChain(tuple(transforms))
