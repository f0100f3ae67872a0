"""
The import rules between the project's packages and engine's subpackages, checked on the
source (ast), so that an arrow pointing the wrong way fails here before it tangles the code.

Arrows point one way (../shared/DESIGN.md): transports (mllp/, xds/) and mappings/ know
nothing of channels or the engine's pipeline; channels/ adapts them; engine/ wires it all,
and inside engine/ the store knows nothing of the flow, the flow nothing of delivery or the
CLI, and only the composition root (engine/app.py) imports channels/.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"engine", "channels", "mllp", "mappings", "xds", "identity", "tlsfiles"}
BASE = {"engine.status", "engine.interfaces"}

# package (path prefix) -> project modules it may import (prefixes)
RULES: dict[str, set[str]] = {
    # TLS from PEM files, below both transports (which may not import each other)
    "tlsfiles": {"tlsfiles"},
    "mllp": {"mllp", "tlsfiles"},
    "mappings": {"mappings"},
    "xds": {"xds", "engine.store", "tlsfiles"},
    "engine.store": BASE | {"engine.store"},
    # config: the admin section checks its token and addresses with the listener's own rules
    "engine.config": BASE | {"engine.config", "engine.serve.adminauth", "engine.flow.response",
                             "engine.flow.handover", "engine.flow.consent", "engine.store.consent",
                             "xds", "mappings", "mllp.header", "identity.model",
                             "identity.matching.model"},
    "engine.flow": BASE | {"engine.flow", "engine.store", "mappings", "mllp"},
    "engine.delivery": BASE | {"engine.delivery", "engine.store"},
    # consent: the store's oppositions, looked up across the identity index's persons
    "engine.consent": BASE | {"engine.consent", "engine.store", "identity.model",
                              "identity.store"},
    "engine.reload": BASE | {"engine.reload", "engine.config", "engine.store"},
    # the listeners besides MLLP (admin site, shared record) sit on the store, the settings,
    # the flow and the XDS server; nothing below them knows them
    "engine.serve": BASE | {"engine.serve", "engine.store", "engine.config", "engine.flow",
                            "xds"},
    # the index's store sits on the engine store's tables; the model and the matcher stay pure
    "identity.store": {"identity.model", "identity.matching", "identity.store", "identity.service",
                       "engine.store"},
    "identity.model": {"identity.model"},
    "identity.matching": {"identity.model", "identity.matching"},
    # the glue between the engine's flow and the index: the one place that knows both
    # (and the xds destination's hooks: the index's patientId, the DMP's preparation)
    "engine.identity": BASE | {"engine.identity", "engine.flow", "engine.store",
                               "engine.config", "identity", "mappings", "mllp", "xds"},
    "identity.hl7": {"identity.hl7", "identity.model", "identity.service", "mllp", "mappings"},
}
ONLY_ROOT_IMPORTS_CHANNELS = {"engine.app"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """The project modules ``path`` imports (``from engine import x`` counts as engine.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in PROJECT}


def allowed(name: str, prefixes: set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def modules_under(package: str) -> list[Path]:
    base = ROOT.joinpath(*package.split("."))
    return sorted(base.rglob("*.py")) if base.is_dir() else []


CASES = [(package, path) for package in RULES for path in modules_under(package)
         if "migrations" not in path.parts]


@pytest.mark.parametrize("package,path", CASES,
                         ids=[str(p.relative_to(ROOT)) for _, p in CASES])
def test_imports_point_one_way(package, path):
    """If a module imports a package its layer may not know, then the layering is broken."""
    wrong = {name for name in imported(path) if not allowed(name, RULES[package])}
    assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_only_the_composition_root_imports_channels():
    """If an engine module other than app.py imports channels/, then connectors leak in."""
    offenders = {module_name(p) for p in modules_under("engine")
                 if any(n.split(".")[0] == "channels" for n in imported(p))}
    offenders = {m for m in offenders if not m.startswith("engine.cli")}
    assert offenders <= ONLY_ROOT_IMPORTS_CHANNELS, offenders - ONLY_ROOT_IMPORTS_CHANNELS


# Who may import engine.serve: the composition root and the CLI (which start the listeners or
# speak to them), the admin section's checks (engine.config.admin), and serve itself.
SERVE_IMPORTERS = ("engine.app", "engine.cli", "engine.config.admin", "engine.serve")


def test_only_the_root_and_the_cli_import_the_listeners():
    """If the flow, the store or delivery imports engine.serve, then a listener leaks in."""
    offenders = {module_name(p) for p in modules_under("engine")
                 if any(allowed(n, {"engine.serve"}) for n in imported(p))}
    assert {m for m in offenders if not allowed(m, set(SERVE_IMPORTERS))} == set()


def test_the_listeners_are_covered_by_a_rule():
    """If engine/serve/ holds modules, then each is checked against its package's rule."""
    covered = {path for package, path in CASES if package == "engine.serve"}
    assert covered == set(modules_under("engine.serve")) and len(covered) >= 4


def test_flow_does_not_import_the_cli():
    """If the flow imports the CLI, then a command's code runs inside the engine."""
    offenders = {module_name(p) for p in modules_under("engine.flow")
                 if any(allowed(n, {"engine.cli", "engine.app"}) for n in imported(p))}
    assert not offenders


FILE_IO = ("open(", ".read_text(", ".read_bytes(", ".write_text(", ".write_bytes(")


@pytest.mark.parametrize("path", modules_under("mappings"), ids=lambda p: p.name)
def test_mappings_do_no_file_io(path):
    """If a mapping module reads or writes files, then table files escaped the config."""
    source = path.read_text()
    assert not [call for call in FILE_IO if call in source], path.name


MAX_LINES = 500
SOURCES = [p for package in ("engine", "channels", "mllp", "mappings", "xds", "identity",
                              "tlsfiles")
           for p in modules_under(package) if "migrations" not in p.parts]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_stay_small(path):
    """If a module grows past about 500 lines, then it holds more than one job."""
    relative = str(path.relative_to(ROOT))
    assert len(path.read_text().splitlines()) <= MAX_LINES, relative
