"""
Synthetic HL7 v2 traffic for load tests, the benchmark and ``aiguillage send --generate N``.

Why a generator rather than replaying ``samples/``: a load test needs thousands of messages
that are *distinct* (the engine acknowledges a repeated sender + MSH-10 without processing
it again, so replayed samples would measure the duplicate path), that look like real feeds
(PAM France ADT of about 1.5 kB, lab ORU of about 4.6 kB, accented names, a qualified INS
next to the local IPP) and that let a test check per-patient ordering after delivery.

Everything here is a pure, deterministic function of its arguments: the same ``n`` (and the
same ``seed`` for :func:`message_stream`) gives the same bytes, so a failing load run can be
reproduced exactly.  Messages are built by plain string formatting from segment templates
prepared once at import, with no HL7 library, so that the generator costs a few microseconds
per message and is never what the benchmark measures.

The data are fictitious: names come from small lists, the NIR-shaped INS matricules carry a
valid key but are derived from the patient number, and the assigning-authority OIDs under
``1.2.250.1.999`` belong to no real organisation.

test-case-name: tests.test_synthetic
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Iterator, Sequence

__all__ = [
    "adt_message",
    "oru_message",
    "message_stream",
    "patient_ipp",
    "control_id_of",
    "patient_of",
]

# MSH-18 values this generator can produce, with the Python codec that writes them.  This is
# the generator's own subset, not the engine's charset table.
_CODECS = {"UNICODE UTF-8": "utf-8", "8859/1": "latin-1"}

# Message structure (MSH-9.3) for each ADT trigger the generator knows.
_ADT_STRUCTURES = {
    "A01": "ADT_A01",
    "A02": "ADT_A02",
    "A03": "ADT_A03",
    "A04": "ADT_A01",
    "A08": "ADT_A01",
}
# PAM France requires ZBE on these movements; A08 carries none.
_ZBE_TRIGGERS = frozenset({"A01", "A02", "A03", "A04"})

_EPOCH = datetime(2024, 1, 1, 6, 0, 0)

_IPP_AUTHORITY = "CHU-EXEMPLE&1.2.250.1.999.1.1&ISO"
_NDA_AUTHORITY = "CHU-EXEMPLE&1.2.250.1.999.1.2&ISO"
_FACILITY = "CHU-EXEMPLE&1.2.250.1.999.1&ISO"
# INS-NIR as PAM France writes it in PID-3 (CX.4 namespace&OID&ISO, CX.5 INS).
_INS_AUTHORITY = "ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO"
_PS_AUTHORITY = "ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO"

# Every string below must stay encodable in ISO 8859-1 (no Œ): "8859/1" output uses it.
_BIRTH_NAMES = (
    "MARTIN", "BERNARD", "LEFÈVRE", "DUBOIS", "GIRAUD", "MÉNARD", "FAURE", "ROUSSEL",
    "CHEVALIER", "BÉRAUD", "NOËL", "GAUTHIER", "PERRIN", "MOREL", "FRANÇOIS", "LEGRAND",
    "BRUNET", "BOUCHER", "MÉTAYER", "DESCHAMPS", "LEMAÎTRE", "BARRÉ", "CARON", "RENARD",
)
_USED_NAMES = ("GARNIER", "ROBIN", "COLIN", "VIDAL", "AUBRY", "BENOÎT", "LACROIX")
# (first given name, list of birth given names, administrative sex)
_GIVEN = (
    ("Hélène", "Hélène Marie", "F"), ("Jérôme", "Jérôme Pierre", "M"),
    ("Anaïs", "Anaïs Claire", "F"), ("François", "François Xavier", "M"),
    ("Cécile", "Cécile", "F"), ("Loïc", "Loïc André", "M"),
    ("Océane", "Océane Julie", "F"), ("Thérèse", "Thérèse Jeanne Louise", "F"),
    ("Benoît", "Benoît", "M"), ("Maëlle", "Maëlle Rose", "F"),
    ("Stéphane", "Stéphane Michel", "M"), ("Noémie", "Noémie", "F"),
    ("Gaël", "Gaël Yves", "M"), ("Agnès", "Agnès Brigitte", "F"),
)
# (INSEE commune code, postcode, city)
_PLACES = (
    ("63113", "63000", "Clermont-Ferrand"), ("69383", "69003", "Lyon"),
    ("75112", "75012", "Paris"), ("13055", "13005", "Marseille"),
    ("31555", "31000", "Toulouse"), ("44109", "44000", "Nantes"),
    ("67482", "67000", "Strasbourg"), ("59350", "59000", "Lille"),
)
_STREETS = (
    "rue des Gras", "avenue Jean Jaurès", "boulevard Gambetta", "place de la République",
    "rue du Général de Gaulle", "chemin des Écoliers", "allée des Châtaigniers",
    "impasse Saint-Éloi",
)
_WARDS = (
    ("Cardiologie", "4201", "CARD"), ("Néphrologie", "4305", "NEPH"),
    ("Médecine interne", "4110", "MEDI"), ("Pneumologie", "4220", "PNEU"),
    ("Gériatrie", "4502", "GERI"),
)
_DOCTORS = tuple(
    f"8100{rpps:08d}^{family}^{given}^^^DR^^^{_PS_AUTHORITY}^D^^^IDNPS"
    for rpps, family, given in (
        (1234567, "MOREAU", "Paul"), (7654321, "LAMBERT", "Sophie"),
        (2468013, "ROUSSEL", "Étienne"), (3692581, "FAURE", "Nathalie"),
        (1357913, "HÉBERT", "Rémi"),
    )
)

# Lab analytes: (OBX-3, OBX-6, low, high, decimals).  Values are drawn a little beyond
# [low, high] so that H and L flags occur as in real biology.
_ANALYTES = (
    ("GLY^Glycémie^L^14749-6^Glucose [Moles/volume] in Serum or Plasma^LN",
     "mmol/L^mmol/L^UCUM", 4.1, 5.9, 1),
    ("CREA^Créatinine^L^14682-9^Creatinine [Moles/volume] in Serum or Plasma^LN",
     "umol/L^µmol/L^UCUM", 45, 90, 0),
    ("UREE^Urée^L", "mmol/L^mmol/L^UCUM", 2.5, 7.5, 1),
    ("NA^Sodium^L", "mmol/L^mmol/L^UCUM", 136, 145, 0),
    ("K^Potassium^L", "mmol/L^mmol/L^UCUM", 3.5, 5.1, 1),
    ("CL^Chlorure^L", "mmol/L^mmol/L^UCUM", 98, 107, 0),
    ("CA^Calcium^L", "mmol/L^mmol/L^UCUM", 2.2, 2.6, 2),
    ("PROT^Protéines totales^L", "g/L^g/L^UCUM", 64, 83, 0),
    ("ALB^Albumine^L", "g/L^g/L^UCUM", 35, 52, 0),
    ("CRP^Protéine C réactive^L", "mg/L^mg/L^UCUM", 0, 5, 1),
    ("ASAT^Aspartate aminotransférase^L", "U/L^UI/L^UCUM", 5, 34, 0),
    ("ALAT^Alanine aminotransférase^L", "U/L^UI/L^UCUM", 5, 55, 0),
    ("GGT^Gamma-glutamyltransférase^L", "U/L^UI/L^UCUM", 12, 64, 0),
    ("PAL^Phosphatases alcalines^L", "U/L^UI/L^UCUM", 40, 150, 0),
    ("BILT^Bilirubine totale^L", "umol/L^µmol/L^UCUM", 3, 21, 0),
    ("HB^Hémoglobine^L^718-7^Hemoglobin [Mass/volume] in Blood^LN",
     "g/dL^g/dL^UCUM", 12.0, 16.0, 1),
    ("GB^Leucocytes^L^6690-2^Leukocytes [#/volume] in Blood^LN",
     "10*9/L^G/L^UCUM", 4.0, 10.0, 1),
    ("PLQ^Plaquettes^L^777-3^Platelets [#/volume] in Blood^LN",
     "10*9/L^G/L^UCUM", 150, 400, 0),
    ("TP^Taux de prothrombine^L", "%^%^UCUM", 70, 100, 0),
    ("FERR^Ferritine^L", "ug/L^µg/L^UCUM", 15, 150, 0),
    ("TSH^Thyréostimuline^L", "m[IU]/L^mUI/L^UCUM", 0.4, 4.0, 2),
    ("HBA1C^Hémoglobine glyquée^L", "%^%^UCUM", 4.0, 6.0, 1),
)

_VALUE_STEPS = 100


def _obx_template(code: str, unit: str, low: float, high: float, decimals: int):
    """Prepare one analyte's OBX: the fixed text around OBX-5 and OBX-8, and every value.

    Values run in ``_VALUE_STEPS`` steps from 30 % of the range below ``low`` to 30 % above
    ``high``, each with its abnormal flag (HL7 table 0078), formatted here once so that
    building a message only looks them up.
    """
    ref = f"{low:.{decimals}f}-{high:.{decimals}f}" if low else f"<{high:.{decimals}f}"
    lowest = max(0.0, low - 0.3 * (high - low))
    highest = high + 0.3 * (high - low)
    values = []
    for step in range(_VALUE_STEPS):
        value = round(lowest + step / _VALUE_STEPS * (highest - lowest), decimals)
        flag = "H" if value > high else "L" if value < low else "N"
        values.append(f"{value:.{decimals}f}|{unit}|{ref}|{flag}")
    return f"|NM|{code}||", tuple(values)


_OBX = tuple(_obx_template(*analyte) for analyte in _ANALYTES)
_BIOLOGIST = _DOCTORS[3]


def _timestamp(n: int) -> str:
    """One message every 7 s from a fixed epoch: increasing with ``n``, like a real feed.

    Wraps every 10**8 messages (22 years of feed) so that a large ``n`` (the CLI starts from
    the clock to keep control ids distinct between runs) stays a valid date.
    """
    return (_EPOCH + timedelta(seconds=7 * (n % 10**8))).strftime("%Y%m%d%H%M%S")


def _nir_key(first13: str) -> str:
    return f"{97 - int(first13) % 97:02d}"


def patient_ipp(patient: int) -> str:
    """The local IPP (PID-3.1 of the first repetition) that the generator gives ``patient``."""
    return f"{patient + 1:08d}"


def _nda(patient: int) -> str:
    """The patient's current stay number (PID-18 NDA, PV1-19): one stay per patient, so an
    ORU names the same stay as the ADT that opened it."""
    return f"24{patient % 10**8:08d}"


def _patient_segments(patient: int, n: int) -> tuple[str, str]:
    """PID and PD1 for ``patient``: the same person in every message that names them.

    The INS matricule is built in mixed radix from the patient number (birth year, birth
    month, birth place, order number), so two patients below 80*12*len(_PLACES)*999 (about
    7.6 million) never share an INS: a load test of identity reconciliation must not see
    false merges that the data made up.
    """
    given, given_list, sex = _GIVEN[(patient // len(_BIRTH_NAMES)) % len(_GIVEN)]
    birth_name = _BIRTH_NAMES[patient % len(_BIRTH_NAMES)]
    year, rest = 1930 + patient % 80, patient // 80
    month, rest = 1 + rest % 12, rest // 12
    insee, postcode, city = _PLACES[rest % len(_PLACES)]
    order = 1 + rest // len(_PLACES) % 999
    day = 1 + patient % 28
    first13 = f"{1 if sex == 'M' else 2}{year % 100:02d}{month:02d}{insee}{order:03d}"
    nir = first13 + _nir_key(first13)
    ipp = patient_ipp(patient)
    names = f"{birth_name}^{given}^{given_list}^^^^L"
    if sex == "F" and patient % 3 == 0:
        names += f"~{_USED_NAMES[patient % len(_USED_NAMES)]}^{given}^^^^^D"
    street = _STREETS[patient % len(_STREETS)]
    phone = f"{patient % 10**8:08d}"
    # A patient's address changes over time (A08), hence the dependence on n.
    number = 1 + (patient + n // 1000) % 120
    pid = (
        f"PID|1||{ipp}^^^{_IPP_AUTHORITY}^PI~{nir}^^^{_INS_AUTHORITY}^INS^^20230915"
        f"||{names}||{year}{month:02d}{day:02d}|{sex}"
        f"|||{number} {street}^^{city}^^{postcode}^FRA^H~^^^^^^BDL^^{insee}"
        f"||^PRN^PH^^^^^^^^^04{phone}~^PRN^CP^^^^^^^^^06{phone}"
        f"|||{'M' if patient % 2 else 'S'}||{_nda(patient)}^^^{_NDA_AUTHORITY}^AN"
        f"||||||||||||N||QUAL"
    )
    pd1 = f"PD1||||{_DOCTORS[2 + patient % 3]}"
    return pid, pd1


def _msh(sending_app: str, sending_facility: str, timestamp: str, message_type: str,
         control_id: str, charset: str, pam_profile: bool) -> str:
    """MSH; ADT declares the PAM France 2.11 profile (MSH-12 components and MSH-21)."""
    version = "2.5^FRA^2.11" if pam_profile else "2.5"
    tail = "||2.11^IHE_FRANCE-2.11-PAM" if pam_profile else ""
    return (
        f"MSH|^~\\&|{sending_app}|{sending_facility}|AIGUILLAGE|CHU-EXEMPLE|{timestamp}||"
        f"{message_type}|{control_id}|P|{version}|||AL|NE|FRA|{charset}|FR{tail}"
    )


def _codec(encoding: str) -> str:
    try:
        return _CODECS[encoding]
    except KeyError:
        raise ValueError(
            f"unsupported MSH-18 {encoding!r}; the generator writes {sorted(_CODECS)}"
        ) from None


def adt_message(
    n: int,
    *,
    trigger: str = "A01",
    patient: int | None = None,
    sending_app: str = "HIS",
    sending_facility: str = "CHU-EXEMPLE",
    encoding: str = "UNICODE UTF-8",
) -> bytes:
    """A PAM France ADT (MSH EVN PID PD1 ROL PV1 PV2, ZBE on movements, ZFA ZFD) of ~1.5 kB.

    ``n`` makes it unique: MSH-10 is ``ADT{n:09d}``, MSH-7 and the visit and movement
    numbers follow ``n``.  ``patient`` (default ``n``) chooses the person: PID-3 holds the
    local IPP (:func:`patient_ipp`) then the INS-NIR.  Segments end with CR, including the
    last, and the bytes are encoded as ``encoding`` (MSH-18) says.
    """
    structure = _ADT_STRUCTURES.get(trigger)
    if structure is None:
        raise ValueError(
            f"unsupported ADT trigger {trigger!r}; known: {sorted(_ADT_STRUCTURES)}"
        )
    codec = _codec(encoding)
    who = n if patient is None else patient
    ts = _timestamp(n)
    pid, pd1 = _patient_segments(who, n)
    ward, uf, service = _WARDS[who % len(_WARDS)]
    doctor = _DOCTORS[who % 2]
    referring = _DOCTORS[2 + who % 3]
    visit = f"{_nda(who)}^^^{_NDA_AUTHORITY}^VN"
    patient_class = "O" if trigger == "A04" else "I"
    admitted = ts[:12] + "00"
    # PV1-36 discharge disposition and PV1-45 discharge time only on A03.
    disposition, discharged = ("01", ts) if trigger == "A03" else ("", "")
    segments = [
        _msh(sending_app, sending_facility, ts, f"ADT^{trigger}^{structure}", f"ADT{n:09d}",
             encoding, pam_profile=True),
        f"EVN||{ts}|||ADM{who % 50:03d}^BERNARD^Sylvie|{ts[:12]}00",
        pid,
        pd1,
        f"ROL|{n}^CHU-EXEMPLE|AD|FHCP^Family health care professional^HL70443|{referring}",
        f"PV1|1|{patient_class}|{service}^{100 + who % 300}^{1 + who % 2}^{_FACILITY}|U|||"
        f"{doctor}|{referring}||{service[:3]}||||90|||||{visit}{'|' * 17}{disposition}"
        f"|||CHU-EXEMPLE|||||{admitted}|{discharged}||||||V",
        f"PV2|||R07.4^Douleur thoracique, sans précision^CIM10|||||{ts[:8]}",
    ]
    if trigger in _ZBE_TRIGGERS:
        unit = f"{ward}^^^^^{_FACILITY}^UF^^^{uf}"
        segments.append(
            f"ZBE|{n}^CHU-EXEMPLE^1.2.250.1.999.1^ISO|{ts}||INSERT|N||{unit}|{unit}|HMS"
        )
    segments.append(f"ZFA|ACTIF|{ts}|||||||INO|{ts}|IC|{ts}")
    # ZFD-5..8: the identity was qualified through the INSi service on an identity card.
    segments.append(f"ZFD|||||INSI|20230915{ts[8:]}|CNI|20330914")
    return ("\r".join(segments) + "\r").encode(codec)


def oru_message(
    n: int,
    *,
    results: int = 20,
    patient: int | None = None,
    sending_app: str = "SIL",
    sending_facility: str = "LABO-CHU-EXEMPLE",
    encoding: str = "UNICODE UTF-8",
) -> bytes:
    """A lab ORU^R01 (MSH, PID, PV1, ORC, OBR, ``results`` NM OBX) of ~4.6 kB for 20 results.

    OBX-3 carries local lab codes (some with LOINC as the alternate coding), OBX-6 UCUM
    units, OBX-7 reference ranges and OBX-8 flags that vary with ``n``.  MSH-10 is
    ``ORU{n:09d}``; ``patient`` (default ``n``) is the same person as in :func:`adt_message`.
    """
    if results < 1:
        raise ValueError("an ORU^R01 needs at least one OBX")
    codec = _codec(encoding)
    who = n if patient is None else patient
    ts = _timestamp(n)
    pid, _ = _patient_segments(who, n)
    service = _WARDS[who % len(_WARDS)][2]
    doctor = _DOCTORS[who % 2]
    order = f"CMD{n:09d}^DPI|{n:011d}^{sending_app}"
    segments = [
        _msh(sending_app, sending_facility, ts, "ORU^R01^ORU_R01", f"ORU{n:09d}", encoding,
             pam_profile=False),
        pid,
        f"PV1|1|I|{service}^{100 + who % 300}^{1 + who % 2}^{_FACILITY}"
        f"||||||||||||||||{_nda(who)}^^^{_NDA_AUTHORITY}^VN",
        f"ORC|RE|{order}||CM||||{ts}|||{doctor}",
        f"OBR|1|{order}|BILAN^Bilan biologique^L|||{ts}|||||||{ts}||{doctor}"
        f"||||||{ts}||CH|F",
    ]
    for index in range(results):
        head, values = _OBX[index % len(_OBX)]
        # A multiplicative hash of (n, index) picks the value: results differ between
        # messages and between analytes, with no random state to carry.
        value = values[(n * 2654435761 + index * 40503) % 1000 * _VALUE_STEPS // 1000]
        segments.append(f"OBX|{index + 1}{head}{value}|||F|||{ts}||{_BIOLOGIST}")
    return ("\r".join(segments) + "\r").encode(codec)


def message_stream(
    count: int,
    *,
    kinds: Sequence[str] = ("adt", "oru"),
    patients: int = 100,
    seed: int = 0,
    start: int = 0,
) -> Iterator[bytes]:
    """``count`` distinct messages, message ``i`` about patient ``order[i % patients]``.

    Patients are visited round-robin in an order shuffled once by ``seed``, so each patient
    gets a message every ``patients`` messages and a test can check that per-patient order
    (MSH-10 increasing) survived delivery.  A patient's first ADT is an A01 admission, later
    ones A08 updates, as a real feed would send them.  ``seed`` also draws each message's
    kind from ``kinds``.  MSH-10 uses ``n = start + i``: give concurrent senders disjoint
    ``start`` ranges so that the engine does not take their messages for duplicates.
    """
    unknown = set(kinds) - {"adt", "oru"}
    if unknown or not kinds:
        raise ValueError(f"kinds must be drawn from ('adt', 'oru'), got {tuple(kinds)!r}")
    if patients < 1:
        raise ValueError("patients must be at least 1")
    rng = random.Random(seed)
    order = list(range(patients))
    rng.shuffle(order)
    admitted: set[int] = set()
    for i in range(count):
        n = start + i
        patient = order[i % patients]
        kind = rng.choice(kinds)
        if kind == "adt":
            trigger = "A08" if patient in admitted else "A01"
            admitted.add(patient)
            yield adt_message(n, trigger=trigger, patient=patient)
        else:
            yield oru_message(n, patient=patient)


def control_id_of(payload: bytes) -> str:
    """MSH-10 of a generated message (a plain split: MSH-1 is the separator, so index 9)."""
    return payload.split(b"\r", 1)[0].split(b"|")[9].decode("ascii")


def patient_of(payload: bytes) -> str:
    """PID-3.1 of the first repetition (the local IPP) of a generated message."""
    pid = payload[payload.index(b"\rPID|") + 1:]
    return pid.split(b"|", 4)[3].split(b"~", 1)[0].split(b"^", 1)[0].decode("ascii")
