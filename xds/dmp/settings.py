"""
A DMP destination's settings, from the mapping its configuration file holds
(the ``dmp:`` block of an ITI-41 destination, see docs/xds.md), to the two
objects prepare_for_dmp takes: the structure's credentials and the
per-destination part of the context, which :meth:`DMPSettings.for_message`
completes with what each message says (the patient's identity status, ...).

Every problem names the key it is about (``dmp.practitioner.roles[0].code``)
so that the loader can report it against the file. Reading the files is
blocking: configuration time only.

test-case-name: tests.xds.dmp.test_settings
"""
from __future__ import annotations

import dataclasses
import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from xds.dmp.credentials import CredentialsError, DMPCredentials, Software, load_credentials
from xds.dmp.prepare import DMPContext
from xds.dmp.values import ValueSetError, load_value_sets
from xds.dmp.vihf import AUTHN_TLS_CLIENT, Practitioner
from xds.metadata.model import Code


class DMPSettingsError(ValueError):
    """A ``dmp:`` setting is missing, of the wrong type, or names unusable files."""


@dataclass(frozen=True)
class DMPSettings:
    """What a DMP destination keeps: its credentials and its context template."""

    credentials: DMPCredentials
    context: DMPContext

    def for_message(self, *, identity_status: str, patient_ins: str = "",
                    authn_instant: datetime.datetime | None = None) -> DMPContext:
        """The context for one message: the template plus what the message says."""
        return dataclasses.replace(self.context, identity_status=identity_status,
                                   patient_ins=patient_ins, authn_instant=authn_instant)


def read_dmp_settings(options: Mapping[str, Any], base_dir: Path, *, where: str = "dmp",
                      environ: Mapping[str, str] = os.environ,
                      now: datetime.datetime | None = None) -> DMPSettings:
    """Build :class:`DMPSettings` from *options*; relative paths are under *base_dir*."""
    path = _Reader(options, where, base_dir)
    password_variable = path.text("key_password_env", required=False)
    password = None
    if password_variable:
        if password_variable not in environ:
            raise DMPSettingsError(f"{where}.key_password_env: the environment has no"
                                   f" {password_variable}")
        password = environ[password_variable].encode()
    software = path.child("software")
    try:
        credentials = load_credentials(
            path.file("certificate"), path.file("key"), key_password=password,
            chain_file=path.file("chain", required=False),
            structure_id=path.text("structure_id"), activity_sector=path.code("activity_sector"),
            software=Software(software.text("name"), software.text("version"),
                              software.text("homologation", required=False)), now=now)
    except CredentialsError as exc:
        raise DMPSettingsError(f"{where}: {exc}") from None
    try:
        value_sets = load_value_sets(path.file("value_sets"))
    except (ValueSetError, OSError) as exc:
        raise DMPSettingsError(f"{where}.value_sets: {exc}") from None
    person = path.child("practitioner")
    roles = person.codes("roles")
    if not roles:
        raise DMPSettingsError(f"{where}.practitioner.roles: at least one role (JDV_J65)")
    context = DMPContext(
        Practitioner(person.text("identifier"), person.text("name"), tuple(roles)), value_sets,
        authn_context=path.text("authn_context", required=False) or AUTHN_TLS_CLIENT,
        vihf_lifetime=datetime.timedelta(seconds=path.number("vihf_lifetime_seconds", 300)),
        security_must_understand=path.flag("security_must_understand", True))
    return DMPSettings(credentials, context)


class _Reader:
    """Typed access to one mapping of the settings, errors named by key path."""

    def __init__(self, options: Any, where: str, base_dir: Path):
        if not isinstance(options, Mapping):
            raise DMPSettingsError(f"{where}: expected a mapping, got {type(options).__name__}")
        self.options, self.where, self.base_dir = options, where, base_dir

    def child(self, key: str) -> "_Reader":
        return _Reader(self.options.get(key), f"{self.where}.{key}", self.base_dir)

    def text(self, key: str, required: bool = True) -> str:
        value = self.options.get(key)
        if value is None or value == "":
            if required:
                raise DMPSettingsError(f"{self.where}.{key} is required")
            return ""
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise DMPSettingsError(f"{self.where}.{key}: expected text, got {value!r}")
        return str(value)

    def file(self, key: str, required: bool = True) -> Path | None:
        value = self.text(key, required)
        return (self.base_dir / value) if value else None

    def number(self, key: str, default: int) -> int:
        value = self.options.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise DMPSettingsError(f"{self.where}.{key}: expected a positive integer,"
                                   f" got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.options.get(key, default)
        if not isinstance(value, bool):
            raise DMPSettingsError(f"{self.where}.{key}: expected true or false, got {value!r}")
        return value

    def code(self, key: str) -> Code:
        return _Reader(self.options.get(key), f"{self.where}.{key}", self.base_dir).as_code()

    def codes(self, key: str) -> list[Code]:
        values = self.options.get(key) or []
        if not isinstance(values, list):
            raise DMPSettingsError(f"{self.where}.{key}: expected a list of codes")
        return [_Reader(value, f"{self.where}.{key}[{index}]", self.base_dir).as_code()
                for index, value in enumerate(values)]

    def as_code(self) -> Code:
        return Code(self.text("code"), self.text("scheme"), self.text("display", required=False))
