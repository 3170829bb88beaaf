"""Pairwise affinity (Standley et al., ICML 2020, the task-affinity table)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from grouping import LossTable
from grouping.affinity import pairwise_affinity
from grouping.candidates import Candidate


def table(
    rows: dict[tuple[str, ...], dict[str, float]], tasks: tuple[str, ...] = ("a", "b", "c")
) -> LossTable:
    return LossTable.from_losses(tasks, {Candidate(k): v for k, v in rows.items()})


def test_hand_computed_gains_are_relative_to_the_single_and_asymmetric() -> None:
    t = table(
        {
            ("a",): {"a": 2.0},
            ("b",): {"b": 4.0},
            ("c",): {"c": 1.0},
            ("a", "b"): {"a": 1.5, "b": 5.0},  # a gains 25%, b loses 25%
            ("a", "c"): {"a": 2.0, "c": 0.9},  # a unchanged, c gains 10%
        }
    )
    aff = pairwise_affinity(t)
    assert aff.get("a", "b") == pytest.approx(0.25)
    assert aff.get("b", "a") == pytest.approx(-0.25)
    assert aff.get("a", "c") == pytest.approx(0.0)
    assert aff.get("c", "a") == pytest.approx(0.1)
    # pair (b, c) was never trained: unknown, not zero
    assert math.isnan(aff.get("b", "c")) and math.isnan(aff.get("c", "b"))
    assert all(math.isnan(aff.gain[i, i]) for i in range(3))
    assert aff.pair_mean()[("a", "b")] == pytest.approx(0.0)
    assert aff.as_dict()["b"]["c"] is None and aff.as_dict()["a"]["b"] == pytest.approx(0.25)


def test_a_pair_that_equals_its_singles_has_zero_gain_whatever_the_losses() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        la, lb = rng.uniform(0.01, 10, size=2)
        t = table({("a",): {"a": la}, ("b",): {"b": lb}, ("a", "b"): {"a": la, "b": lb}}, ("a", "b"))
        assert np.allclose(np.nan_to_num(pairwise_affinity(t).gain), 0.0)


def test_half_size_singles_are_not_the_reference_and_bad_inputs_are_named() -> None:
    t = LossTable.from_losses(
        ("a", "b"), {Candidate(("a",), 0.5): {"a": 1.0}, Candidate(("a", "b")): {"a": 1, "b": 1}}
    )
    assert math.isnan(pairwise_affinity(t).get("a", "b"))  # no full-size single of a
    with pytest.raises(ValueError, match="unknown task"):
        pairwise_affinity(t).get("a", "z")
    zero = table({("a",): {"a": 0.0}, ("b",): {"b": 1.0}, ("a", "b"): {"a": 1, "b": 1}}, ("a", "b"))
    with pytest.raises(ValueError, match="task 'a'"):
        pairwise_affinity(zero)


def test_paper_setting_1_affinity_matches_the_raw_file(shared_data: Path) -> None:
    """Read the test-loss file by hand (line 2.. = singles then pairs, lexicographic) and compare."""
    from grouping import read_loss_table

    path = shared_data / "standley" / "results_test.txt"
    lines = [line.split("\t") for line in path.read_text().splitlines()]
    singles = [float(lines[1 + i][i]) for i in range(5)]
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    aff = pairwise_affinity(read_loss_table(path))
    for k, (i, j) in enumerate(pairs):
        fields = lines[6 + k]
        assert aff.gain[i, j] == pytest.approx((singles[i] - float(fields[i])) / singles[i])
        assert aff.gain[j, i] == pytest.approx((singles[j] - float(fields[j])) / singles[j])
    # the paper's striking case: edges (e) trained with segmentation (s) is much worse than alone
    assert aff.get("e", "s") < -0.5
