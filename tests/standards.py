"""
Where the reference standards are: the one helper every test that reads them uses.

The samples, schemas and value sets live outside the repository, in ``../shared/standards``
beside it, or where ``AIGUILLAGE_STANDARDS`` points; the folder is recognised by its
``SOURCES.md``. Outside CI a missing folder skips the tests that need it, with a message
saying where it was looked for and how to point at it; under CI (``CI=true``) it fails them,
so that a CI run never passes without checking against the official material.

test-case-name: tests.test_standards
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT = REPO_ROOT.parent / "shared" / "standards"


def standards_dir() -> Path:
    """The standards folder; skip (outside CI) or fail (under CI) when it is absent."""
    configured = os.environ.get("AIGUILLAGE_STANDARDS")
    path = Path(configured) if configured else DEFAULT
    if (path / "SOURCES.md").is_file():
        return path
    message = (f"standards folder not found at {path} (set AIGUILLAGE_STANDARDS to the "
               "shared/standards folder holding SOURCES.md)")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def sample(relative: str) -> Path:
    """A file under the standards folder (``hl7v2/...``, ``xds/...``)."""
    return standards_dir() / relative
