"""
Every ``test-case-name:`` header names a test module that exists.

Why: the header tells a reader (and Twisted's trial) where a module's tests are; one that names
a module renamed or never written sends them nowhere, and nothing else would notice.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "channels", "mllp", "mappings", "xds", "identity", "tlsfiles", "tests")
HEADER = re.compile(r"^test-case-name:\s*(.+)$", re.M)


def named_modules(source: str) -> list[str]:
    """The modules a source's ``test-case-name:`` headers name (comma-separated each)."""
    return [name.strip() for line in HEADER.findall(source) for name in line.split(",")
            if name.strip()]


def exists(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


HEADED = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                if "test-case-name:" in p.read_text(encoding="utf-8"))


def test_the_headers_are_found():
    """If no module carried a header, the check below would pass on nothing."""
    assert len(HEADED) > 50


@pytest.mark.parametrize("path", HEADED, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_header_names_an_existing_test_module(path):
    missing = [m for m in named_modules(path.read_text(encoding="utf-8")) if not exists(m)]
    assert not missing, f"{path.relative_to(ROOT)} names {missing}"


def test_named_modules_reads_lists():
    assert named_modules("x\ntest-case-name: tests.a, tests.b\n") == ["tests.a", "tests.b"]
