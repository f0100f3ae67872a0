"""The one helper that finds shared/standards: skip outside CI, fail under CI.

test-case-name: tests.test_standards
"""
from __future__ import annotations

import pytest

from tests import standards


def test_configured_folder_is_used(tmp_path, monkeypatch):
    """If AIGUILLAGE_STANDARDS names a folder with SOURCES.md, then that folder is used."""
    (tmp_path / "SOURCES.md").write_text("x")
    monkeypatch.setenv("AIGUILLAGE_STANDARDS", str(tmp_path))
    assert standards.standards_dir() == tmp_path


def test_missing_folder_skips_outside_ci(tmp_path, monkeypatch):
    """If the folder is absent and CI is not 'true', then the test is skipped with the path."""
    monkeypatch.setenv("AIGUILLAGE_STANDARDS", str(tmp_path / "absent"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="absent"):
        standards.standards_dir()


def test_missing_folder_fails_under_ci(tmp_path, monkeypatch):
    """If the folder is absent under CI, then the test fails rather than passing unchecked."""
    monkeypatch.setenv("AIGUILLAGE_STANDARDS", str(tmp_path / "absent"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="AIGUILLAGE_STANDARDS"):
        standards.standards_dir()


def test_default_is_beside_the_repository(monkeypatch):
    """If nothing is configured, then ../shared/standards from the repository root is looked at."""
    monkeypatch.delenv("AIGUILLAGE_STANDARDS", raising=False)
    monkeypatch.delenv("CI", raising=False)
    try:
        found = standards.standards_dir()
    except pytest.skip.Exception as skipped:
        assert str(standards.REPO_ROOT.parent / "shared" / "standards") in str(skipped)
    else:
        assert found == standards.REPO_ROOT.parent / "shared" / "standards"


def test_sample_is_a_file_under_the_folder(tmp_path, monkeypatch):
    """If a sample is asked for, then its path is under the configured folder."""
    (tmp_path / "SOURCES.md").write_text("x")
    monkeypatch.setenv("AIGUILLAGE_STANDARDS", str(tmp_path))
    assert standards.sample("hl7v2/adt.hl7") == tmp_path / "hl7v2" / "adt.hl7"


def test_the_repository_root_is_the_folder_holding_tests():
    """If the default is computed, then it starts from the repository (where tests/ is)."""
    assert (standards.REPO_ROOT / "tests" / "standards.py").is_file()
