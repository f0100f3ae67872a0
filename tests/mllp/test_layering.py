"""The wire layer's import rule: mllp/ may import the standard library and Twisted only
(zope.interface included: it is how Twisted declares what a protocol implements), and
tlsfiles/, TLS from PEM files on Twisted alone, shared with the XDS.b endpoints."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

MLLP_DIR = Path(__file__).resolve().parents[2] / "mllp"
ALLOWED = set(sys.stdlib_module_names) | {"twisted", "zope", "mllp", "tlsfiles"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


MODULES = sorted(MLLP_DIR.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_only_stdlib_and_twisted(path):
    """If an mllp module imports the engine or an HL7 library, then the layering is broken."""
    assert imported_roots(path) <= ALLOWED, imported_roots(path) - ALLOWED


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "__init__.py"],
                         ids=lambda p: p.name)
def test_module_names_its_tests(path):
    """If a module does not name its test module, then trial and readers cannot find it."""
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    line = next(line for line in docstring.splitlines() if line.startswith("test-case-name:"))
    module = line.split(":", 1)[1].strip()
    assert (MLLP_DIR.parent / (module.replace(".", "/") + ".py")).is_file(), module


def test_the_rule_has_teeth(tmp_path):
    """If a file imports engine, then imported_roots reports it."""
    bad = tmp_path / "bad.py"
    bad.write_text("from engine.interfaces import PeerInfo\nimport hl7\n")
    assert imported_roots(bad) - ALLOWED == {"engine", "hl7"}
