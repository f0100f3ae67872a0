"""
The settings example of docs/identity.md makes a model.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from identity.matching import MatchModel

PAGE = Path(__file__).resolve().parents[2] / "docs" / "identity.md"


def test_settings_example_loads():
    """If the page's settings fragment is read, then it makes a model with those values."""
    text = PAGE.read_text(encoding="utf-8")
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    model = MatchModel.from_mapping(yaml.safe_load(block))
    assert (model.upper, model.lower, model.margin) == (20.0, 10.0, 6.0)
    assert model.u["birth_place"] == (0.02, 0.98)
    assert model.m["address"] == (0.6, 0.2, 0.2)
    assert model.m["family"] == MatchModel().m["family"]
