"""engine.metrics on hand-made predictions whose scores are worked out here."""

from __future__ import annotations

import numpy as np
import pytest

from engine.metrics import (
    Interval,
    classification_scores,
    confidently_wrong,
    exact_matches,
    expected_calibration_error,
    is_tie,
    mean_interval,
)

# four rows: true labels 0, 0, 1, 1; predictions 0 (0.9), 1 (0.6), 1 (0.8), 1 (0.7)
LABELS = [0, 0, 1, 1]
PROBABILITIES = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])


def test_classification_scores_worked_by_hand():
    scores = classification_scores(LABELS, PROBABILITIES, ["neg", "pos"])
    assert scores.accuracy.value == 0.75
    # per-row correctness 1, 0, 1, 1: sample standard deviation 0.5, over sqrt(4)
    assert scores.accuracy.stderr == pytest.approx(0.25)
    assert scores.confusion == [[1, 1], [0, 2]]
    neg, pos = scores.per_class
    assert (neg.precision, neg.recall, neg.support) == (1.0, 0.5, 2)
    assert pos.precision == pytest.approx(2 / 3) and pos.recall == 1.0
    assert scores.f1_macro == pytest.approx((2 / 3 + 0.8) / 2)
    # bins: 0.6 alone (wrong), 0.7 alone, 0.8 alone, 0.9 alone (right): mean |acc - conf| per row
    assert scores.ece == pytest.approx((0.6 + 0.3 + 0.2 + 0.1) / 4)


def test_ece_of_a_calibrated_bin_is_zero():
    confidence = np.array([0.75, 0.75, 0.75, 0.75])
    assert expected_calibration_error(confidence, np.array([1, 1, 1, 0.0])) == pytest.approx(0.0)


def test_confidently_wrong_orders_by_confidence():
    probabilities = np.array([[0.9, 0.1], [0.45, 0.55], [0.05, 0.95], [0.8, 0.2]])
    assert confidently_wrong([1, 0, 0, 0], probabilities, 5) == [(2, 1, 0.95), (0, 0, 0.9), (1, 1, 0.55)]  # fmt: skip


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = [1.0] * 70 + [0.0] * 30
    first, second = mean_interval(values), mean_interval(values)
    assert first == second
    assert first.low < 0.7 < first.high
    assert first.high - first.low == pytest.approx(2 * 1.96 * first.stderr, rel=0.15)


def test_ties_within_the_noise_only():
    a = Interval(0.80, 0.01, 0.78, 0.82)
    assert is_tie(a, Interval(0.78, 0.01, 0.76, 0.80))  # 0.02 < 1.96 * 0.0141
    assert not is_tie(a, Interval(0.75, 0.01, 0.73, 0.77))
    assert not is_tie(Interval(0.8, 0, 0.8, 0.8), Interval(0.79, 0, 0.79, 0.79))


def test_exact_match_folds_case_and_spaces():
    assert exact_matches(["Paris ", "a  b", "x"], ["paris", "A B", "y"]) == [1.0, 1.0, 0.0]
