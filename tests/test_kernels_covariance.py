"""Covariance kernels (neuroenc._kernels.covariance) against plain numpy/scikit-learn references."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import ledoit_wolf, oas, shrunk_covariance

from neuroenc._kernels.covariance import (
    STATUS_CONSTANT,
    STATUS_OK,
    STATUS_SINGULAR,
    covariance_batch,
    embedded_length,
)


def numpy_reference(X: np.ndarray, estimator: str, shrinkage: float = 0.1) -> np.ndarray:
    """One trial at a time, with numpy/scikit-learn only."""
    out = []
    for x in np.asarray(X, dtype=np.float64):
        xc = x - x.mean(axis=1, keepdims=True)
        scm = xc @ xc.T / x.shape[1]
        if estimator == "scm":
            out.append(scm)
        elif estimator == "cov":
            out.append(np.atleast_2d(np.cov(x)))
        elif estimator == "corr":
            out.append(np.atleast_2d(np.corrcoef(x)))
        elif estimator == "lwf":
            out.append(ledoit_wolf(x.T)[0])
        elif estimator == "oas":
            out.append(oas(x.T)[0])
        elif estimator == "shrunk":
            out.append(shrunk_covariance(scm, shrinkage))
        else:
            raise ValueError(estimator)
    return np.array(out)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


ESTIMATORS = ["scm", "cov", "corr", "lwf", "oas", "shrunk"]


@pytest.mark.parametrize("n_channels", [1, 2, 3, 4, 5, 9])
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_kernel_matches_numpy(n_channels, estimator):
    X = np.random.default_rng(n_channels).standard_normal((6, n_channels, 57))
    cov, status, where = covariance_batch(X, estimator, shrinkage=0.3)
    assert cov.shape == (6, n_channels, n_channels)
    assert relative_error(cov, numpy_reference(X, estimator, 0.3)) < 1e-12
    assert np.array_equal(cov, cov.transpose(0, 2, 1))  # exactly symmetric
    assert (status == STATUS_OK).all() and (where == -1).all()


@pytest.mark.parametrize("offset", [0.0, 3.0, 1e4])
def test_large_means_are_centred_exactly(offset):
    # A mean 1e4 standard deviations away would lose 8 digits if removed after the product;
    # the kernel centres such trials first.
    rng = np.random.default_rng(1)
    X = rng.standard_normal((4, 6, 300)) + offset * rng.standard_normal((4, 6, 1))
    for estimator in ("scm", "lwf", "oas"):
        cov, _, _ = covariance_batch(X, estimator)
        assert relative_error(cov, numpy_reference(X, estimator)) < 1e-12


def test_one_row_mean_large_other_rows_small():
    X = np.random.default_rng(2).standard_normal((3, 5, 200))
    X[1, 3] += 1e6
    cov, _, _ = covariance_batch(X, "scm")
    ref = numpy_reference(X, "scm")
    assert np.abs(cov - ref).max() / np.abs(ref).max(axis=(1, 2)).min() < 1e-12


def test_float32_input_is_computed_in_float64():
    X32 = np.random.default_rng(3).standard_normal((5, 4, 100)).astype(np.float32)
    cov, _, _ = covariance_batch(X32, "scm")
    assert cov.dtype == np.float64
    assert relative_error(cov, numpy_reference(X32.astype(np.float64), "scm")) < 1e-12


def test_threads_give_identical_results():
    X = np.random.default_rng(4).standard_normal((37, 7, 80))
    one, _, _ = covariance_batch(X, "lwf", n_jobs=1)
    two, _, _ = covariance_batch(X, "lwf", n_jobs=2)
    assert np.array_equal(one, two)


def test_near_singular_is_computed_and_not_flagged():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3, 4, 400))
    X[:, 3] = X[:, 0] + 1e-4 * rng.standard_normal((3, 400))  # condition number about 1e8
    cov, status, _ = covariance_batch(X, "scm")
    assert (status == STATUS_OK).all()
    assert relative_error(cov, numpy_reference(X, "scm")) < 1e-12
    assert np.linalg.cond(cov).max() > 1e7


def test_exact_duplicate_is_flagged_with_its_row():
    X = np.random.default_rng(6).standard_normal((5, 4, 100))
    X[2, 3] = X[2, 1]
    _, status, where = covariance_batch(X, "scm")
    assert status.tolist() == [STATUS_OK, STATUS_OK, STATUS_SINGULAR, STATUS_OK, STATUS_OK]
    assert where[2] == 3


def test_linear_combination_is_flagged():
    X = np.random.default_rng(7).standard_normal((2, 5, 100))
    X[1, 4] = 2.0 * X[1, 0] - 0.5 * X[1, 2]
    _, status, where = covariance_batch(X, "corr")
    assert status[1] == STATUS_SINGULAR and where[1] == 4 and status[0] == STATUS_OK


def test_constant_row_is_flagged_but_shrinkage_still_estimates():
    X = np.random.default_rng(8).standard_normal((3, 4, 100))
    X[0, 2] = 7.25
    _, status, where = covariance_batch(X, "scm")
    assert status[0] == STATUS_CONSTANT and where[0] == 2
    cov, status, where = covariance_batch(X, "lwf")
    assert status[0] == STATUS_CONSTANT and where[0] == 2
    assert relative_error(cov, numpy_reference(X, "lwf")) < 1e-12
    assert np.linalg.eigvalsh(cov[0])[0] > 0


def test_rank_check_can_be_disabled():
    X = np.random.default_rng(9).standard_normal((2, 3, 50))
    X[0, 2] = X[0, 0]
    _, status, _ = covariance_batch(X, "scm", check_rank=False)
    assert (status == STATUS_OK).all()


def explicit_embedding(X: np.ndarray, order: int, lag: int) -> np.ndarray:
    n_times = X.shape[2]
    if order == 1:
        return X
    n = n_times - order * lag
    return np.concatenate([X[:, :, q * lag : q * lag + n] for q in range(order)], axis=1)


@pytest.mark.parametrize("order, lag", [(1, 3), (2, 1), (3, 4), (5, 2)])
@pytest.mark.parametrize("estimator", ["scm", "lwf", "oas"])
def test_embedding_matches_explicit_stack(order, lag, estimator):
    X = np.random.default_rng(order * 10 + lag).standard_normal((4, 3, 90))
    cov, status, _ = covariance_batch(X, estimator, order=order, lag=lag)
    assert cov.shape == (4, 3 * order, 3 * order)
    assert (status == STATUS_OK).all()
    emb = explicit_embedding(X, order, lag)
    assert emb.shape[2] == embedded_length(90, order, lag)
    assert relative_error(cov, numpy_reference(emb, estimator)) < 1e-12


def test_embedding_rejects_too_few_samples():
    with pytest.raises(ValueError, match="leave"):
        covariance_batch(np.zeros((1, 2, 10)), order=5, lag=2)
