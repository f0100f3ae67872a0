"""
File names for the ``file`` destination (:mod:`channels.file_destination`): a ``str.format``
template checked once, when the destination is built (an unknown placeholder, or anything
that could leave the directory, is refused then rather than failing every delivery later),
rendered per message from values made safe for a file name, never a dot-file (pollers
matching ``*.hl7`` skip those, so a delivery reported SENT would never be picked up), and cut
to the file system's name limit, keeping its extension, rather than failing every retry.

test-case-name: tests.channels.test_file_destination
"""
from __future__ import annotations

import hashlib
import os
import re
import string
import time
from typing import Any, Mapping

from engine.interfaces import DeliveryContext

__all__ = ["DEFAULT_NAME_MAX", "DEFAULT_TEMPLATE", "PLACEHOLDERS", "FileNamer", "check_template",
           "fit_name", "name_fields", "name_limit", "render", "sanitise"]

DEFAULT_TEMPLATE = "{channel}-{message_id:012d}.hl7"
PLACEHOLDERS = ("channel", "destination", "message_id", "delivery_id", "control_id",
                "message_type", "date", "time")
# Any one character outside [A-Za-z0-9._-]: replaced by "_" in a name's values.
_UNSAFE = re.compile(r"[^A-Za-z0-9._\-]")
_MISSING = "unknown"  # stands for an absent control id or message type in a name
DEFAULT_NAME_MAX = 255  # when the file system does not say (pathconf unsupported)
_MAX_EXTENSION = 16  # a longer "extension" is part of the name, cut with it


def name_fields(context: DeliveryContext, destination: str, seconds: float) -> dict[str, Any]:
    """The values a file name template may use; ``date`` and ``time`` are UTC at ``seconds``."""
    now = time.gmtime(seconds)
    return {"channel": sanitise(context.channel), "destination": sanitise(destination),
            "message_id": context.message_id, "delivery_id": context.delivery_id,
            "control_id": sanitise(context.control_id),
            "message_type": sanitise(context.message_type),
            "date": time.strftime("%Y%m%d", now), "time": time.strftime("%H%M%S", now)}


def sanitise(value: str | None) -> str:
    """``value`` safe in a file name: characters outside ``[A-Za-z0-9._-]`` become ``_``."""
    if not value:
        return _MISSING
    return _UNSAFE.sub("_", value)


class FileNamer:
    """One destination's file names: :func:`name_fields` then :func:`render`, computing per
    message only the fields its template names (a date costs a ``gmtime`` and two
    ``strftime``), the destination's own name once.

    The template must have passed :func:`check_template`.
    """

    def __init__(self, template: str, destination: str):
        self.template = template
        self._used = frozenset(field for _, field, _, _ in string.Formatter().parse(template)
                               if field is not None)
        self._destination = sanitise(destination)

    def name(self, context: DeliveryContext, seconds: float) -> str:
        """The file name of ``context``'s message at ``seconds``; ValueError as
        :func:`render`."""
        used, fields = self._used, {}
        if "channel" in used:
            fields["channel"] = sanitise(context.channel)
        if "message_id" in used:
            fields["message_id"] = context.message_id
        if "destination" in used:
            fields["destination"] = self._destination
        if "delivery_id" in used:
            fields["delivery_id"] = context.delivery_id
        if "control_id" in used:
            fields["control_id"] = sanitise(context.control_id)
        if "message_type" in used:
            fields["message_type"] = sanitise(context.message_type)
        if "date" in used or "time" in used:
            now = time.gmtime(seconds)
            fields["date"] = time.strftime("%Y%m%d", now)
            fields["time"] = time.strftime("%H%M%S", now)
        return render(self.template, fields)


def check_template(template: str, who: str) -> None:
    """Refuse a file name template that names unknown fields or could leave the directory."""
    if "/" in template or "\\" in template or ".." in template:
        raise ValueError(f'{who}: filename template "{template}" must not contain "/", '
                         '"\\" or "..": files stay in the configured directory')
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template)
                  if field is not None]
    except ValueError as error:
        raise ValueError(f'{who}: filename template "{template}" is malformed: {error}') from None
    for field in fields:
        if field not in PLACEHOLDERS:
            raise ValueError(f'{who}: unknown placeholder "{{{field}}}" in filename template '
                             f'"{template}"; known: {", ".join(PLACEHOLDERS)}')
    sample = {"channel": "adt", "destination": "lab", "message_id": 1, "delivery_id": 1,
              "control_id": "MSG00001", "message_type": "ADT_A01", "date": "20240101",
              "time": "120000"}
    try:
        render(template, sample)
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise ValueError(f'{who}: filename template "{template}" cannot be used: '
                         f"{error}") from None


def render(template: str, fields: Mapping[str, Any]) -> str:
    """The file name for ``fields``, leading dots made ``_``; ValueError if not a plain name.

    A dot-file is hidden from the pollers that read the directory (and ``.`` or ``..`` is
    not a file at all), so every leading dot is replaced.
    """
    name = template.format_map(fields)
    if not name or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f'filename template "{template}" gives an unusable name {name!r}')
    stripped = name.lstrip(".")
    return "_" * (len(name) - len(stripped)) + stripped


def fit_name(name: str, limit: int) -> str:
    """``name`` cut to ``limit`` bytes (UTF-8), keeping its extension and a digest of the
    whole, so that two long names cut alike still differ; ``name`` itself if it fits."""
    if len(name) * 4 <= limit:  # no character takes more than 4 bytes: it fits
        return name
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) <= limit:
        return name
    stem, extension = os.path.splitext(name)
    if len(extension.encode("utf-8", "surrogateescape")) > _MAX_EXTENSION:
        stem, extension = name, ""
    digest = "-" + hashlib.sha256(encoded).hexdigest()[:12]
    room = limit - len(extension.encode("utf-8", "surrogateescape")) - len(digest)
    head = stem.encode("utf-8", "surrogateescape")[:max(room, 1)]
    return head.decode("utf-8", "ignore") + digest + extension


def name_limit(directory: str) -> int:
    """The longest file name, in bytes, the file system under ``directory`` takes."""
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return DEFAULT_NAME_MAX
