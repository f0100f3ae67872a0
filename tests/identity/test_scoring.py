"""
Tests for identity.matching.model: weights, frequency weighing and territory settings.
"""
from __future__ import annotations

import math

import pytest

from identity.matching import MatchModel
from identity.matching.compare import FIELDS
from identity.matching.model import DEFAULT_M, DEFAULT_U, InvalidModel


def test_weights_are_log2_m_over_u():
    """If a level has probabilities m and u, then its weight is log2(m/u)."""
    weights = dict(zip(FIELDS, MatchModel().weights()))
    assert weights["sex"][0] == pytest.approx(math.log2(DEFAULT_M["sex"][0] / DEFAULT_U["sex"][0]))
    assert all(w[-1] < 0 for f, w in weights.items()), "the worst level of each field counts against"
    assert all(w[0] > 0 for w in weights.values()), "exact agreement counts for"


def test_a_common_name_weighs_less_than_a_rare_one():
    """If a name is shared by many persons of the index, then agreeing on it proves less."""
    model = MatchModel()
    common = model.exact_weight("family", 800, 100_000)
    rare = model.exact_weight("family", 1, 100_000)
    assert rare > common + 5


def test_frequencies_of_a_small_index_stay_near_the_default():
    """If the index is small, then one name held by half of it is not taken as that common."""
    model = MatchModel()
    default = math.log2(DEFAULT_M["family"][0] / DEFAULT_U["family"][0])
    assert model.exact_weight("family", 1, 2) > default - 1
    assert model.exact_weight("family", 1, 2) > math.log2(DEFAULT_M["family"][0] / 0.5) + 5
    assert model.exact_weight("family", 0, 0) == pytest.approx(default)


def test_territory_settings_override_part_of_the_model():
    """If a territory sets a threshold and one level's m, then the rest stays default."""
    settings = {"upper": 22, "fields": {"sex": {"m": {"exact": 0.99, "different": 0.01}}}}
    model = MatchModel.from_mapping(settings)
    assert model.upper == 22.0 and model.lower == MatchModel().lower
    assert model.m["sex"] == (0.99, 0.01)
    assert model.m["family"] == DEFAULT_M["family"]
    assert MatchModel.from_mapping(model.to_mapping()) == model


@pytest.mark.parametrize("settings, complaint", [
    ({"uper": 20}, "unknown keys"),
    ({"fields": {"gender": {}}}, "unknown field"),
    ({"fields": {"sex": {"m": {"same": 0.9}}}}, "unknown levels"),
    ({"fields": {"sex": {"u": {"exact": 0.0}}}}, r"in \(0, 1\)"),
    ({"upper": 5, "lower": 10}, "lower"),
])
def test_bad_settings_are_named(settings, complaint):
    """If a territory's settings cannot make a model, then the error names what is wrong."""
    with pytest.raises(InvalidModel, match=complaint):
        MatchModel.from_mapping(settings)
