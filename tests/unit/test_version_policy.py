"""Version policies are pure filters."""
from __future__ import annotations

import pytest

from ovfast.repository.version_policy import All, Latest, Specific, policy_from_json


def test_select():
    avail = [3, 1, 7, 2]
    assert Latest(1).select(avail) == [7]
    assert Latest(2).select(avail) == [3, 7]
    assert Latest(10).select(avail) == [1, 2, 3, 7]
    assert All().select(avail) == [1, 2, 3, 7]
    assert Specific((1, 5, 7)).select(avail) == [1, 7]
    assert Latest(1).select([]) == []


@pytest.mark.parametrize("obj,expected", [
    (None, Latest(1)), ({"all": {}}, All()), ({"latest": {"num_versions": 3}}, Latest(3)),
    ({"specific": {"versions": [2, 1, 2]}}, Specific((1, 2))),
])
def test_parse(obj, expected):
    assert policy_from_json(obj) == expected


@pytest.mark.parametrize("obj", [
    {}, {"all": {}, "latest": {}}, {"newest": {}}, {"latest": {"num_versions": 0}}, {"latest": {"n": 1}},
    {"specific": {"versions": []}}, {"specific": {"versions": [0]}}, {"all": {"x": 1}}, "all", {"all": 1},
])
def test_parse_errors(obj):
    with pytest.raises(ValueError):
        policy_from_json(obj)
