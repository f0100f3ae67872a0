"""Fixtures for the DMP tests: the test PKI on disk, credentials, the JDV value sets."""
from __future__ import annotations

import pytest

from tests.xds.dmp.pki import pki
from tests.standards import standards_dir
from xds.dmp.values import load_value_sets
from xds.dmp.vihf import Practitioner
from xds.metadata.model import Code


@pytest.fixture(scope="session")
def pki_files(tmp_path_factory):
    """PEM files of the CA, the structure's certificate and key."""
    return pki().write(tmp_path_factory.mktemp("pki"))


@pytest.fixture()
def credentials():
    return pki().credentials()


@pytest.fixture()
def value_sets():
    return load_value_sets(standards_dir() / "terminology" / "ans-jdv")


@pytest.fixture()
def practitioner():
    return Practitioner("801234567897", "DAVID Charles, Médecine interne",
                        (Code("10", "1.2.250.1.213.1.1.4.5", "Médecin"),
                         Code("SM26", "1.2.250.1.213.1.1.4.5", "Qualifié en médecine générale")))
