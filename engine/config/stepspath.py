"""
Where the modules of ``python:`` steps come from: the ``steps_path`` directory of
``engine.yaml``, relative to that file.

Why: a ``python: chu_exemple.mappings:ins_first`` step imports ``chu_exemple.mappings`` when the
channel loads. Left to the interpreter's own search path, it works or not depending on the
directory the engine was started from, and a failure said only ``ModuleNotFoundError``. With
``steps_path: steps`` the module is ``steps/chu_exemple/mappings.py`` next to ``engine.yaml``,
whatever the working directory, and an import that fails says where it was looked for.

The directory is put at the front of ``sys.path`` once, for the whole process (as an installed
package would be on it); :func:`import_hint` is what a failed import of a ``python:`` step adds
to its load error.

test-case-name: tests.config.test_stepspath
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from engine.config.schema import Problems, Where

__all__ = ["import_hint", "use_steps_path"]

_added: list[str] = []  # the steps_path directories put on sys.path, most recent last


def use_steps_path(directory: str | None, where: Where, problems: Problems) -> None:
    """Put ``directory`` (``engine.yaml``'s resolved ``steps_path``) on ``sys.path``."""
    if directory is None:
        return
    if not os.path.isdir(directory):
        problems.add(where, f"steps_path: {directory} is not a directory (the modules of "
                            "python: steps are looked for there, relative to engine.yaml)")
        return
    if directory not in sys.path:
        sys.path.insert(0, directory)
        importlib.invalidate_caches()
    if directory in _added:
        _added.remove(directory)
    _added.append(directory)


def import_hint(module: Any) -> str:
    """What to do about a ``python:`` step whose module ``module`` was not found ("" for
    None: the step failed for another reason)."""
    if not module:
        return ""
    file = os.path.join(*str(module).split(".")) + ".py"
    if not _added:
        return (f"; the modules of python: steps are found through steps_path in engine.yaml "
                f"(a directory relative to it, such as steps_path: steps, holding {file}), "
                "which is not set")
    return f"; put {file} in {_added[-1]} (steps_path in engine.yaml), or install it"
