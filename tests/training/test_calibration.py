"""Calibration on gold validation rows: chosen by an out-of-fold proper score, it lowers the
expected calibration error of an overconfident model on rows it was not fitted on."""

import numpy as np
import pytest

from mlinfra_assets.training.calibration import Calibration, brier, fit
from mlinfra_assets.training.metrics import expected_calibration_error


def overconfident(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from true probabilities, and a model's probabilities three times as sharp."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.2, (n, classes))
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(classes, p=p) for p in true])
    sharp = np.exp(3 * logits) / np.exp(3 * logits).sum(axis=1, keepdims=True)
    return labels, sharp


@pytest.mark.parametrize("classes", [2, 3])
def test_calibration_lowers_the_calibration_error_on_unseen_rows(classes):
    labels, probs = overconfident(4000, classes, seed=classes)
    fit_rows, test_rows = slice(0, 2000), slice(2000, None)
    cal = fit(labels[fit_rows], probs[fit_rows], positive=1)
    assert cal.method in {"temperature", "isotonic"}
    assert cal.brier[cal.method] < cal.brier["none"]
    assert cal.method == min(cal.brier, key=cal.brier.get)
    calibrated = cal.apply(probs[test_rows])
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0, atol=1e-9)
    before = expected_calibration_error(labels[test_rows], probs[test_rows])
    after = expected_calibration_error(labels[test_rows], calibrated)
    assert after < before / 2, (before, after)
    assert brier(labels[test_rows], calibrated) < brier(labels[test_rows], probs[test_rows])
    # it travels as JSON and maps the same
    again = Calibration.from_json(cal.to_json())
    np.testing.assert_allclose(again.apply(probs[test_rows]), calibrated)


def test_a_calibrated_model_keeps_its_probabilities():
    rng = np.random.default_rng(5)
    probs = rng.dirichlet([1, 1, 1], 3000)
    labels = np.array([rng.choice(3, p=p) for p in probs])
    cal = fit(labels, probs)
    assert cal.method == "none" or cal.brier[cal.method] <= cal.brier["none"]
    assert abs(cal.brier[cal.method] - cal.brier["none"]) < 0.01


def test_too_few_gold_rows_are_not_calibrated():
    cal = fit(np.array([0, 1] * 10), np.full((20, 2), 0.5))
    assert cal.method == "none" and cal.rows == 20
    assert cal.reason.startswith("not calibrated: 20 gold validation rows")
    one_class = fit(np.zeros(200, dtype=int), np.full((200, 2), 0.5))
    assert one_class.method == "none" and "class counts [200, 0]" in one_class.reason


def test_the_expected_metric_is_the_estimators_figure_on_the_same_rows():
    """training.metrics.expected_metric (the holdout's estimated figure) is what the SQL
    estimate of monitoring.performance computes for the same rows (tests/monitoring's direct)."""
    import numpy as np

    from mlinfra_assets.training.metrics import expected_metric
    from tests.monitoring.test_estimation import direct, spec_of

    rng = np.random.default_rng(3)
    for classes, metric in ((["legit", "fraud"], "f1"), (["a", "b", "c"], "macro_f1"), (["a", "b", "c"], "accuracy")):
        spec = spec_of(classes, metric)
        cal = rng.dirichlet(np.ones(len(classes)), 500)
        pred = rng.integers(0, len(classes), 500)
        assert expected_metric(metric, cal, pred, len(classes), spec.positive_index) == pytest.approx(direct(spec, cal, pred))
