"""
IHE-shaped ADT messages for the feed tests (PAM France 2.11 conventions, v2.5).
"""
from __future__ import annotations

from mappings.message import HL7Message

STRUCTURES = {"A01": "ADT_A01", "A04": "ADT_A01", "A05": "ADT_A05", "A08": "ADT_A01",
              "A28": "ADT_A05", "A31": "ADT_A05", "A40": "ADT_A39", "A24": "ADT_A24",
              "A37": "ADT_A37", "A47": "ADT_A30"}


def ipp(value: str) -> str:
    return f"{value}^^^CHU-EXEMPLE&1.2.250.1.999.1.1&ISO^PI"


def ght(value: str) -> str:
    return f"{value}^^^GHT-ARVERNE&1.2.250.1.999.2.1&ISO^PI"


def ins(value: str) -> str:
    return f"{value}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS"


def pid_segment(pid3: str, name: str = "CHASSAGNE^MARIE-THÉRÈSE^MARIE-THÉRÈSE ODETTE^^^^L",
                date: str = "19480921", sex: str = "F", status: str = "PROV",
                sequence: int = 1) -> str:
    address = "14 rue Pascal^^Clermont-Ferrand^^63000^FRA^H~^^^^^^BDL^^63430"
    fields = [str(sequence), "", pid3, "", name, "", date, sex, "", "", address] + [""] * 20 + [status]
    return "PID|" + "|".join(fields)


def adt(event: str, *segments: str, control_id: str = "C1") -> HL7Message:
    """An ADT^event message from MSH, EVN and ``segments``."""
    head = (f"MSH|^~\\&|GAM|CHU-EXEMPLE|AIGUILLAGE|GHT|20260318112045||ADT^{event}^"
            f"{STRUCTURES.get(event, 'ADT_A01')}|{control_id}|P|2.5^FRA^2.11|||AL|NE|FRA|UNICODE UTF-8")
    return HL7Message.parse("\r".join([head, "EVN||20260318112045", *segments]) + "\r")
