"""The connectors' import rule: transports and the engine's interfaces, no engine internals."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

CHANNELS_DIR = Path(__file__).resolve().parents[2] / "channels"
ALLOWED_ROOTS = set(sys.stdlib_module_names) | {"twisted", "OpenSSL", "mllp", "xds", "lxml",
                                                  "channels"}
ALLOWED_ENGINE = {"engine.interfaces"}
MODULES = sorted(CHANNELS_DIR.glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_connectors_import_only_transports_and_engine_interfaces(path):
    """If a connector imports engine.store or the pipeline, then the layering is broken."""
    modules = imported_modules(path)
    engine = {module for module in modules if module.split(".")[0] == "engine"}
    others = {module.split(".")[0] for module in modules - engine}
    assert engine <= ALLOWED_ENGINE, engine - ALLOWED_ENGINE
    assert others <= ALLOWED_ROOTS, others - ALLOWED_ROOTS


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "__init__.py"],
                         ids=lambda p: p.name)
def test_module_names_its_tests(path):
    """If a module does not name its test module, then trial and readers cannot find it."""
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    line = next(line for line in docstring.splitlines() if line.startswith("test-case-name:"))
    module = line.split(":", 1)[1].strip()
    assert (CHANNELS_DIR.parent / (module.replace(".", "/") + ".py")).is_file(), module


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "__init__.py"],
                         ids=lambda p: p.name)
def test_functions_stay_short(path):
    """If a function grows past 40 lines, then it wants splitting."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.end_lineno - node.lineno < 40, f"{path.name}:{node.lineno} {node.name}"
