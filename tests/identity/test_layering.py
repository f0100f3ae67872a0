"""
The identity package's place in the layering: it imports nothing of engine/ or channels/,
except identity/store, which sits on the engine's store (engine.store and nothing else of
engine/); only its HL7 side (identity/hl7/) reads messages, with mappings/ and mllp/.
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


def forbidden(path: Path, module: str) -> bool:
    """Whether ``path`` may not import ``module``: the HL7 side may read messages (mappings,
    mllp); identity/store may import engine.store."""
    side = path.relative_to(IDENTITY).parts[0]
    if side == "store" and (module + ".").startswith("engine.store."):
        return False
    allowed = HL7_SIDE_MAY_IMPORT if side == "hl7" else set()
    return module.split(".")[0] in set(FORBIDDEN) - allowed


def test_identity_imports_no_engine_channels_mappings_or_xds():
    """If any module of identity/ imports engine (beyond identity/store's use of engine.store),
    channels or xds, or one outside identity/hl7 imports mappings or mllp, then fail naming it."""
    paths = list(IDENTITY.rglob("*.py"))
    assert len(paths) >= 10
    offenders = {str(path.relative_to(IDENTITY)): sorted(m for m in imported_modules(path)
                                                         if forbidden(path, m))
                 for path in paths}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_store_exception_is_narrow():
    """If identity/store imported engine.flow, then it would be forbidden; the model may not
    import engine.store at all."""
    assert forbidden(IDENTITY / "store" / "x.py", "engine.flow")
    assert forbidden(IDENTITY / "model" / "x.py", "engine.store.schema")
    assert not forbidden(IDENTITY / "store" / "x.py", "engine.store.schema")


def test_the_check_sees_imports():
    """If a module imports engine, then the check finds it (so the test above can fail)."""
    sample = IDENTITY.parent / "tests" / "identity" / "test_layering.py"
    assert "ast" in imported_modules(sample)
