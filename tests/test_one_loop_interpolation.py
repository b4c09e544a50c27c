"""Pairs of an activation without closed forms interpolate their two-layer coefficients over the
layer pairs (the generated oneloop modules' pair_grid): checked against direct evaluation of every
pair, to the error check's own estimate, with negative controls (a coarse grid is rejected by the
check and misses that tolerance; a path that is not smooth in the layer falls back to direct
evaluation)."""

import numpy as np
import pytest

import fieldgen
from fieldgen.generated import CLOSED_FORMS, module

TANH = module("oneloop", "tanh")
K0 = [[1.0, 0.5], [0.5, 1.4]]
CASE = dict(r=0.3, sigma_w2=1.5, depth=64)  # K11 from 1 to 6: the sharp tanh moments


def _path(r, sigma_w2, depth):
    K = fieldgen.kernel("tanh", r=r, sigma_w2=sigma_w2, depth=depth, K0=K0)
    return np.ascontiguousarray(np.stack([K[:, 0, 0], K[:, 1, 1], K[:, 0, 1]], -1))


def _covariance(path, r, sigma_w2, interpolate):
    depth = path.shape[0] - 1
    cov = np.zeros((depth + 1, depth + 1, 3, 3))
    TANH.one_loop(r, sigma_w2, path, cov, np.empty((1, 3, 3)), interpolate=interpolate)
    return cov


def _shift(path, r, sigma_w2, interpolate):
    shift = np.empty((path.shape[0], 3, 3))
    TANH.one_loop(r, sigma_w2, path, np.zeros((1, 1, 3, 3)), shift, interpolate=interpolate)
    return shift


def _relative(x, y):
    return np.max(np.abs(x - y)) / np.max(np.abs(y))


def test_only_activations_without_closed_forms_interpolate():
    assert TANH.INTERPOLATE
    for name in CLOSED_FORMS:
        assert not module("oneloop", name).INTERPOLATE


def test_interpolated_covariance_matches_direct_evaluation_within_the_estimate():
    r, sigma_w2 = CASE["r"], CASE["sigma_w2"]
    path = _path(**CASE)
    fit = TANH.pair_grid(path, False)
    assert fit is not None  # the check accepts a grid here (else the pairs are direct)
    estimate = max(fit["error"], fit["held_out"])
    assert estimate <= TANH.INTERPOLATION_TOL
    direct = _covariance(path, r, sigma_w2, False)
    assert _relative(_covariance(path, r, sigma_w2, True), direct) <= estimate
    # Negative control: a 5 x 5 grid fails the check, and its covariance misses the tolerance.
    coarse = TANH.pair_interpolant(path, False, 5, 5)
    assert min(coarse["error"], coarse["held_out"]) > TANH.INTERPOLATION_TOL
    tables = TANH.interpolated_tables(path, coarse)
    assert _relative(_covariance(path, r, sigma_w2, tables), direct) > TANH.INTERPOLATION_TOL


def _worst_self_feedback(path, fit, pairs):
    """Largest difference of interpolated and direct self-feedback over `pairs`, relative to the
    largest grid value."""
    _, CF, t_nodes, t_lam = TANH.interpolated_tables(path, fit)
    w, value, F = np.empty(t_nodes.shape[0]), np.empty(27), np.empty((3, 3, 3))
    worst = 0.0
    for k, m in pairs:
        TANH._interpolate_pair(CF[m], t_nodes, t_lam, float(k), float(m), w, value)
        TANH.self_feedback_pair(path[k], path[m], F)
        worst = max(worst, np.max(np.abs(value - F.ravel())))
    return worst / np.max(np.abs(fit["VF"]))


def test_interpolated_self_feedback_matches_direct_evaluation_at_layer_pairs():
    path = _path(0.1, 1.0, 100)
    fit = TANH.pair_grid(path, True)
    assert fit is not None
    estimate = max(fit["error"], fit["held_out"])
    rng = np.random.default_rng(5)
    m = rng.integers(1, 101, 40)
    pairs = [(int(rng.integers(0, mm)), int(mm)) for mm in m] + [(99, 100), (0, 1), (0, 100)]
    assert _worst_self_feedback(path, fit, pairs) <= estimate
    coarse = TANH.pair_interpolant(path, True, 5, 5)  # negative control
    assert coarse["error"] > TANH.INTERPOLATION_TOL
    assert _worst_self_feedback(path, coarse, pairs) > TANH.INTERPOLATION_TOL


def test_a_path_rough_in_the_layer_falls_back_to_direct_evaluation():
    r, sigma_w2 = CASE["r"], CASE["sigma_w2"]
    path = _path(**CASE)
    rough = path.copy()
    rough[:, 0] *= 1.0 + 0.05 * np.random.default_rng(3).random(path.shape[0])  # still PSD
    assert TANH.pair_grid(rough, False) is None
    assert np.array_equal(
        _covariance(rough, r, sigma_w2, True), _covariance(rough, r, sigma_w2, False)
    )


@pytest.mark.slow
def test_interpolated_mean_shift_matches_direct_evaluation_within_the_estimate():
    path = _path(0.1, 1.0, 100)
    fit = TANH.pair_grid(path, True)
    assert fit is not None
    estimate = max(fit["error"], fit["held_out"])
    direct = _shift(path, 0.1, 1.0, False)
    assert _relative(_shift(path, 0.1, 1.0, True), direct) <= estimate
    coarse = TANH.pair_interpolant(path, True, 5, 5)  # negative control
    assert coarse["error"] > TANH.INTERPOLATION_TOL
    tables = TANH.interpolated_tables(path, coarse)
    assert _relative(_shift(path, 0.1, 1.0, tables), direct) > estimate
