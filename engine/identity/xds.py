"""
The ``xds`` destination's ``affinity_domain:`` and ``dmp:`` options, turned into its two hooks.

The destination (``channels/xds_destination.py``) takes two callables, ``patient_id`` and
``prepare_request``, and knows nothing of the identity index or the DMP. This module, called
by the composition root when it builds an ``xds`` destination, reads the two options and
gives the destination those callables:

- ``affinity_domain: NAMESPACE`` (a domain of engine.yaml's ``identity: domains``, by
  namespace or OID; or an INS domain): the ``patient_id`` hook looks up, in the identity
  index, the person holding the identifier the document gives (PID-3 / the CDA recordTarget
  id, in CX form) and returns their identifier in that domain (``value^^^&OID&ISO``). The
  lookup is synchronous (:class:`identity.store.service.StoreIdentityIndex`) in a worker
  thread (``deferToThread``), never on the reactor. Nobody holding the identifier, or a
  person with no identifier in the domain: the delivery is refused for good
  (``XDSUnknownPatientId`` and the reason).
- ``dmp:`` (the keys of :func:`xds.dmp.settings.read_dmp_settings`, relative paths under the
  channel file's folder, read and checked at load: unreadable files, an expired certificate, a
  missing value-set folder are configuration errors at the file and line of the destination):
  the patientId sent is the person's INS from the index, only when the index holds it as
  qualified (``QUAL``); and ``prepare_for_dmp`` becomes the ``prepare_request`` hook (it runs
  in the destination's worker thread), with the per-message context's identity status taken
  from the index too. Where the status comes from: the delivery has only the document (a CDA
  has no PID-32) and its message id; the index keeps the INS with the status the hospital's
  messages gave it (PID-32 of the ADT feed), so that is what is used. A VALI, RECUP or PROV
  INS, or none: refused for good (``XDSRegistryMetadataError``, saying which status).

The hooks are made per lane (the engine builds one destination per lane and never calls
``send`` on it before the previous send ended), so the status found by ``patient_id`` is
kept on the lane's hook for its ``prepare_request``, keyed by the delivery id.

test-case-name: tests.identity.store.test_xds_wiring
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from twisted.internet.threads import deferToThread

from engine.config.identity import IdentityConfig
from engine.interfaces import ConnectorConfig, DeliveryFailed
from identity.model import INS_DOMAINS, IdentifierDomain, LocalIdentifier
from xds.dmp.ins import PatientIdRefused, choose_patient_id, ins_cx
from xds.dmp.prepare import prepare_for_dmp
from xds.dmp.settings import DMPSettings, DMPSettingsError, read_dmp_settings
from xds.metadata import errors as codes

TYPE = "xds"
AFFINITY_DOMAIN = "affinity_domain"
DMP = "dmp"


class XDSWiring:
    """Turns an ``xds`` destination's ``affinity_domain:``/``dmp:`` into its hooks.

    ``config_of``: engine.yaml's current :class:`IdentityConfig`; ``index_of``: the
    synchronous index (opened on first use), None when only checking a configuration.
    """

    def __init__(self, config_of: Callable[[], IdentityConfig],
                 index_of: Callable[[], Any] | None = None) -> None:
        self._config_of = config_of
        self._index_of = index_of

    def connector(self, connector: ConnectorConfig) -> ConnectorConfig:
        """``connector`` with its two options given as hooks; ValueError naming the mistake."""
        options = dict(connector.options)
        block, affinity = options.get(DMP), options.get(AFFINITY_DOMAIN)
        if connector.type_name != TYPE or (block is None and affinity is None):
            return connector
        label = f'destination "{connector.name}" ({TYPE})'
        taken = [hook for hook in ("patient_id", "prepare_request") if options.get(hook)]
        if taken:
            raise ValueError(f"{label}: {', '.join(taken)} cannot be given with "
                             f"{AFFINITY_DOMAIN} or {DMP} (they set those hooks)")
        config = self._config_of()
        domain = None
        if affinity is not None:
            domain = _domain(config, str(affinity))
            if domain is None:
                known = ", ".join([d.namespace for d in config.domains]
                                  + sorted(d.namespace for d in INS_DOMAINS))
                raise ValueError(f"{label}: {AFFINITY_DOMAIN} {affinity!r} is not a domain of "
                                 f"engine.yaml's identity: section (known: {known})")
        settings = None
        if block is not None:
            if domain is not None and domain not in INS_DOMAINS:
                raise ValueError(f"{label}: toward the DMP the patientId is the qualified INS; "
                                 f"{AFFINITY_DOMAIN} {affinity!r} is not an INS domain "
                                 "(leave it out)")
            base = Path(connector.file).parent if connector.file else Path.cwd()
            try:
                settings = read_dmp_settings(block, base)
            except DMPSettingsError as error:
                raise ValueError(f"{label}: {error}") from None
        lookup = PatientLookup(self._index_of, self._config_of,
                               None if affinity is None else str(affinity),
                               toward_dmp=settings is not None, url=str(options.get("url") or ""))
        options.update({DMP: None, AFFINITY_DOMAIN: None, "patient_id": lookup.patient_id,
                        "prepare_request": None if settings is None
                        else DMPPreparation(settings, lookup).prepare})
        return dataclasses.replace(connector, options=options)


def _domain(config: IdentityConfig, name: str) -> IdentifierDomain | None:
    """The declared or INS domain named ``name`` (namespace or OID)."""
    return config.named(name) or next(
        (d for d in (*config.domains, *INS_DOMAINS) if d.oid == name), None)


def parse_cx(patient_id: str, config: IdentityConfig) -> LocalIdentifier | None:
    """The identifier of an XDS patientId (``value^^^ns&OID&ISO``), its domain looked up by
    OID, else by namespace, among engine.yaml's and the INS domains; None when unknown."""
    fields = patient_id.split("^")
    if len(fields) < 4 or not fields[0]:
        return None
    namespace, _, rest = fields[3].partition("&")
    oid = rest.partition("&")[0]
    domain = _domain(config, oid) if oid else None
    if domain is None and namespace:
        domain = config.named(namespace)
    if domain is None and oid:
        try:
            domain = IdentifierDomain(oid, namespace)
        except ValueError:
            return None
    return None if domain is None else LocalIdentifier(domain, fields[0])


def cx(identifier: LocalIdentifier) -> str:
    """An identifier as an XDS patientId: ``value^^^&OID&ISO``."""
    return f"{identifier.value}^^^&{identifier.domain.oid}&ISO"


class PatientLookup:
    """The ``patient_id`` hook of one lane: the index's answer for the affinity domain."""

    def __init__(self, index_of: Callable[[], Any] | None,
                 config_of: Callable[[], IdentityConfig], affinity: str | None, *,
                 toward_dmp: bool, url: str = "") -> None:
        self._index_of, self._config_of, self._affinity = index_of, config_of, affinity
        self.toward_dmp, self.url = toward_dmp, url
        self._statuses: dict[int, str] = {}

    # engine.yaml's identity: as it is now: a reload may change the domains (their OIDs)
    # without rebuilding the lanes. The affinity domain was checked when the lane was built.
    @property
    def config(self) -> IdentityConfig:
        return self._config_of()

    @property
    def domain(self) -> IdentifierDomain | None:
        """The affinity domain (None: none given), looked up by namespace or OID."""
        return None if self._affinity is None else _domain(self.config, self._affinity)

    def patient_id(self, patient_id: str, submission: Any, context: Any) -> Any:
        """Deferred[str]: the lookup runs in a worker thread (the index blocks)."""
        return deferToThread(self.resolve, patient_id, context, submission)

    def status_for(self, context: Any) -> str:
        """The identity status the lookup found for this delivery ("" when none)."""
        return self._statuses.pop(getattr(context, "delivery_id", None), "")

    def resolve(self, patient_id: str, context: Any, submission: Any = None) -> str:
        """The patientId to send (blocking); DeliveryFailed, not retried, when there is none.

        An INS given as patientId (a CDA whose PID-32 said QUAL) names nobody in the index:
        the DocumentEntry's sourcePatientId (the local id) is looked up instead."""
        identifier = parse_cx(patient_id, self.config)
        if identifier is None:
            raise self._refused(codes.UNKNOWN_PATIENT_ID, f"patientId {patient_id!r} names no "
                                "identifier domain (CX.4 must hold the assigning authority)")
        if identifier.domain in INS_DOMAINS:
            identifier = self._source_identifier(patient_id, submission) or identifier
        if identifier.domain in INS_DOMAINS:
            raise self._refused(codes.UNKNOWN_PATIENT_ID, f"patientId {patient_id!r} is an INS: "
                                "an INS names nobody in the identity index; send the local "
                                "identifier (PID-3) and let the index give the INS")
        if self._index_of is None:
            raise DeliveryFailed("the identity index is not open", retryable=True)
        person = self._index_of().person(identifier)
        if person is None:
            raise self._refused(codes.UNKNOWN_PATIENT_ID, f"no person of the identity index "
                                f"holds {identifier.value} in {_named(identifier.domain)}")
        if self.toward_dmp or (self.domain is not None and self.domain in INS_DOMAINS):
            return self._ins(person, patient_id, context)
        found = [i for i in person.identifiers if i.domain == self.domain]
        if not found:
            raise self._refused(codes.UNKNOWN_PATIENT_ID, f"person {person.person_id} (holding "
                                f"{patient_id}) has no identifier in the affinity domain "
                                f"{_named(self.domain)}")
        return cx(found[0])

    def _source_identifier(self, patient_id: str, submission: Any) -> LocalIdentifier | None:
        """The local sourcePatientId of the entries whose patientId is ``patient_id``."""
        for entry in getattr(submission, "documents", ()):
            if entry.patient_id == patient_id and entry.source_patient_id:
                found = parse_cx(entry.source_patient_id, self.config)
                if found is not None and found.domain not in INS_DOMAINS:
                    return found
        return None

    def _ins(self, person: Any, patient_id: str, context: Any) -> str:
        ins = person.traits.ins
        if ins is not None and self.domain is not None and ins.domain != self.domain:
            ins = None
        status = ins.status.value if ins is not None else ""
        try:
            chosen = choose_patient_id(
                toward_dmp=True, identity_status=status,
                ins=ins_cx(ins.matricule, ins.domain.oid) if ins is not None else "")
        except PatientIdRefused as refused:
            raise self._refused(codes.REGISTRY_METADATA_ERROR,
                                f"patient {patient_id} (person {person.person_id}): {refused}")
        key = getattr(context, "delivery_id", None)
        if key not in self._statuses:  # one delivery at a time on a lane: forget older ones
            self._statuses = {}
        self._statuses[key] = status
        return chosen

    def _refused(self, code: str, text: str) -> DeliveryFailed:
        where = f" to {self.url}" if self.url else ""
        return DeliveryFailed(f"not sent{where}: {code}: {text}", retryable=False)


def _named(domain: IdentifierDomain) -> str:
    return f"{domain.namespace} ({domain.oid})" if domain.namespace else domain.oid


class DMPPreparation:
    """The ``prepare_request`` hook of a lane toward the DMP: :func:`prepare_for_dmp` with
    the destination's credentials and the message's identity status (a worker thread)."""

    def __init__(self, settings: DMPSettings, lookup: PatientLookup) -> None:
        self.settings, self.lookup = settings, lookup

    def prepare(self, request: Any, outgoing: Any) -> Any:
        """The request signed for the DMP, or DMPPreparationError (refused for good)."""
        context = self.settings.for_message(
            identity_status=self.lookup.status_for(outgoing.context))
        return prepare_for_dmp(request, self.settings.credentials, context)
