"""
Which channel files an engine.yaml names: its ``channels:`` globs, relative to the file.

Kept apart from the loader because it is the one part of loading that touches the file
system's listing: each match is read once even when two globs name it, in the order the globs
give, and a glob that matches nothing is a problem at its own line.

test-case-name: tests.config.test_loader
"""
from __future__ import annotations

import glob
import os

from engine.config.schema import Problems, Where, describe, item_position
from engine.config.yamlsource import YAMLMapping


def channel_files(root: YAMLMapping, where: Where, problems: Problems) -> list[str]:
    """The channel files named by the ``channels:`` globs, in order, each once."""
    patterns = root.get("channels")
    if not isinstance(patterns, list):
        return []
    base = os.path.dirname(where.file)
    here = where.child("channels", root.key_position("channels"))
    files: list[str] = []
    seen: set[str] = set()
    for index, pattern in enumerate(patterns):
        item_where = here.item(index, item_position(patterns, index))
        if not isinstance(pattern, str):
            problems.add(item_where, f"expected a file pattern, got {describe(pattern)}")
            continue
        found = sorted(name for name in glob.glob(os.path.join(base, os.path.expanduser(pattern)),
                                                  recursive=True) if os.path.isfile(name))
        if not found:
            problems.add(item_where, f'no file matches "{pattern}" in {os.path.abspath(base)}')
        for name in found:
            if os.path.realpath(name) not in seen:
                seen.add(os.path.realpath(name))
                files.append(name)
    return files
