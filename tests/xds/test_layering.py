"""The xds package's import rule and house rules: a transport that knows nothing of channels
or the engine's pipeline (only engine.store, per the design), small functions, named tests."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

XDS_DIR = Path(__file__).resolve().parents[2] / "xds"
ALLOWED_ROOTS = set(sys.stdlib_module_names) | {"lxml", "twisted", "zope", "python_multipart",
                                                  "sqlalchemy", "xds", "cryptography", "signxml",
                                                  "tlsfiles"}  # TLS from PEM files, shared
ALLOWED_ENGINE = ("engine.store",)
MODULES = sorted(XDS_DIR.rglob("*.py"))
IDS = [str(p.relative_to(XDS_DIR)) for p in MODULES]


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports"
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_xds_imports_no_channels_and_only_the_engine_store(path):
    """If an xds module imports channels/, mllp/, mappings/ or the engine beyond engine.store,
    then the layering is broken."""
    modules = imported_modules(path)
    engine = {m for m in modules if m.split(".")[0] == "engine"}
    others = {m.split(".")[0] for m in modules - engine}
    assert all(m == "engine.store" or m.startswith("engine.store.") for m in engine), engine
    assert others <= ALLOWED_ROOTS, others - ALLOWED_ROOTS


def test_the_rule_catches_a_channels_import(tmp_path):
    """If a module imported channels, then the rule above would see it."""
    bad = tmp_path / "bad.py"
    bad.write_text("import channels.registry\nfrom engine.flow import intake\n")
    modules = imported_modules(bad)
    assert "channels.registry" in modules and "engine.flow" in modules


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_module_names_its_tests(path):
    """If a module does not name an existing test module, then readers cannot find its tests."""
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    line = next(line for line in docstring.splitlines() if line.startswith("test-case-name:"))
    module = line.split(":", 1)[1].strip()
    assert (XDS_DIR.parent / (module.replace(".", "/") + ".py")).is_file(), module


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_functions_stay_short_and_modules_small(path):
    """If a function grows past 40 lines or a module past 500, then it wants splitting."""
    text = path.read_text()
    assert len(text.splitlines()) < 500
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.end_lineno - node.lineno < 40, f"{path.name}:{node.lineno} {node.name}"
