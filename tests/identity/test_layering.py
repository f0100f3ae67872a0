"""
The identity package's place in the layering: it imports nothing of engine/ or channels/;
only its HL7 side (identity/hl7/) reads messages, with mappings/ and mllp/.
"""
from __future__ import annotations

import ast
from pathlib import Path

IDENTITY = Path(__file__).resolve().parents[2] / "identity"
FORBIDDEN = ("engine", "channels", "mappings", "mllp", "xds")
HL7_SIDE_MAY_IMPORT = {"mappings", "mllp"}


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def forbidden(path: Path) -> set[str]:
    """What ``path`` may not import: the HL7 side may read messages (mappings, mllp)."""
    hl7_side = path.relative_to(IDENTITY).parts[0] == "hl7"
    return set(FORBIDDEN) - (HL7_SIDE_MAY_IMPORT if hl7_side else set())


def test_identity_imports_no_engine_channels_mappings_or_xds():
    """If any module of identity/ imports engine, channels or xds, or one outside identity/hl7
    imports mappings or mllp, then fail naming it."""
    paths = list(IDENTITY.rglob("*.py"))
    assert len(paths) >= 10
    offenders = {str(path.relative_to(IDENTITY)): sorted(m for m in imported_modules(path)
                                                         if m.split(".")[0] in forbidden(path))
                 for path in paths}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_sees_imports():
    """If a module imports engine, then the check finds it (so the test above can fail)."""
    sample = IDENTITY.parent / "tests" / "identity" / "test_layering.py"
    assert "ast" in imported_modules(sample)
