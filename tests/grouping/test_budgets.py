"""The one budget grammar and the one weight grammar: every face reads budgets and weights with these."""

from __future__ import annotations

import pytest

from grouping.budgets import MAX_BUDGETS, budget_range, default_budgets, parse_budgets
from grouping.weights import parse_weights


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1:5:0.5", [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]),
        ("1:2", [1.0, 1.5, 2.0]),  # the step defaults to 0.5 SNT
        ("0.1:0.3:0.1", [0.1, 0.2, 0.3]),  # exact decimals: ends at 0.3
        ("2,1,2.5", [1.0, 2.0, 2.5]),
        (" 2.5 ", [2.5]),
        (2.5, [2.5]),
        (3, [3.0]),
        ([3, 1, 1], [1.0, 3.0]),
        ((1.5, "2"), [1.5, 2.0]),
        ("1e9", [1e9]),
    ],
)
def test_budgets_from_every_form(given, expected) -> None:
    assert parse_budgets(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("abc", "expected START:STOP"),
        ("1:2:3:4", "expected START:STOP"),
        ("", "expected START:STOP"),
        ([], "give at least one budget"),
        ([1, "x"], "expected a list of numbers, a sweep like '1:5:0.5' or one number, got [1, 'x']"),
        ([True], "expected a list of numbers"),
        ({"a": 1}, "expected a sweep"),
        ("0", "finite number of SNT > 0"),
        ([-1], "finite number of SNT > 0"),
        ("nan", "finite number of SNT > 0"),
        ("inf", "finite number of SNT > 0"),
        ("1:1e9:0.001", f"more than {MAX_BUDGETS} budgets"),
        ("3:1", "empty"),
        ("1:2:0", "step must be > 0"),
    ],
)
def test_bad_budgets_are_one_clear_message(given, message) -> None:
    with pytest.raises(ValueError, match=r"^budgets: ") as info:
        parse_budgets(given)
    assert message in str(info.value)


def test_sweeps_and_defaults() -> None:
    assert default_budgets(3) == [1.0, 1.5, 2.0, 2.5, 3.0]
    assert budget_range(0.25, 1, 0.25) == [0.25, 0.5, 0.75, 1.0]
    assert len(parse_budgets(list(range(1, MAX_BUDGETS + 1)))) == MAX_BUDGETS
    with pytest.raises(ValueError, match="at most"):
        parse_budgets(list(range(1, MAX_BUDGETS + 2)))


@pytest.mark.parametrize(
    "given",
    ["s=2,d=1", "s=2, d=1,", ' {"s": 2, "d": 1} ', {"s": 2, "d": 1.0}, {"s": "2", "d": "1"}],
)
def test_weights_from_every_form(given) -> None:
    assert parse_weights(given) == {"s": 2.0, "d": 1.0}


def test_no_weights() -> None:
    assert parse_weights(None) is None
    assert parse_weights("  ") is None
    assert parse_weights({}) == {}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("s", "expected TASK=WEIGHT pairs like s=2,d=1 or a JSON object, got 's'"),
        ("=2", "expected TASK=WEIGHT"),
        ("s=x", "the weight of 's' must be a number, got 'x'"),
        ("s=-1", "finite number >= 0"),
        ("s=inf", "finite number >= 0"),
        ("s=1,s=2", "task 's' is given twice"),
        ("{bad json", "not valid JSON"),
        ("[1, 2]", "expected TASK=WEIGHT"),
        ('{"s": [1]}', "must be a number"),
        ('{"s": true}', "must be a number"),
        (3.0, "expected {task: weight}"),
    ],
)
def test_bad_weights_are_one_clear_message(given, message) -> None:
    with pytest.raises(ValueError, match=r"^weights: ") as info:
        parse_weights(given)
    assert message in str(info.value)
