"""RDM kernels (neuroenc._kernels.rdm) against plain numpy references."""

from __future__ import annotations

import numpy as np
import pytest

from neuroenc._kernels.rdm import DIFFERENCE, ONE_MINUS, group_sums, pair_dissimilarities, pairs_from_products


def reference_pairs(A: np.ndarray, B: np.ndarray, kind: int, scale: float) -> np.ndarray:
    """Sum over folds of A_k B_k^T, then the upper triangle of the dissimilarity, set by set."""
    out = []
    for a, b in zip(A, B):
        K = sum(ak @ bk.T for ak, bk in zip(a, b))
        d = np.diag(K)
        D = d[:, None] + d[None, :] - K - K.T if kind == DIFFERENCE else 1.0 - K
        out.append(D[np.triu_indices(K.shape[0], 1)] * scale)
    return np.array(out)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("n_rows", [2, 3, 4, 5, 8, 9])
@pytest.mark.parametrize("n_cols", [1, 3, 61])
@pytest.mark.parametrize("symmetric", [True, False])
def test_products_match_numpy_for_every_block_remainder(n_rows, n_cols, symmetric):
    rng = np.random.default_rng(n_rows * 100 + n_cols)
    A = rng.standard_normal((3, 2, n_rows, n_cols))
    B = None if symmetric else rng.standard_normal(A.shape)
    for kind in (DIFFERENCE, ONE_MINUS):
        got = pair_dissimilarities(A, B, kind, 0.5, n_jobs=2)
        want = reference_pairs(A, A if B is None else B, kind, 0.5)
        assert got.shape == (3, n_rows * (n_rows - 1) // 2)
        assert relative_error(got, want) < 1e-12


def test_three_dimensional_input_is_one_fold():
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((2, 5, 6, 7))
    got = pair_dissimilarities(A, B, DIFFERENCE)
    assert relative_error(got, reference_pairs(A[:, None], B[:, None], DIFFERENCE, 1.0)) < 1e-12


@pytest.mark.parametrize("n_sets", [1, 2, 5])
@pytest.mark.parametrize("symmetric", [True, False])
def test_wide_sets_split_over_threads_match_numpy(n_sets, symmetric):
    # 9000 features: one set is split into feature ranges on 2 threads (partial products summed)
    rng = np.random.default_rng(n_sets)
    A = rng.standard_normal((n_sets, 2, 7, 4500)) + 3.0
    B = None if symmetric else rng.standard_normal(A.shape)
    want = reference_pairs(A, A if B is None else B, DIFFERENCE, 1e-3)
    for n_jobs in (1, 2):
        assert relative_error(pair_dissimilarities(A, B, DIFFERENCE, 1e-3, n_jobs=n_jobs), want) < 1e-11


def test_identical_rows_give_zero_and_scale_applies():
    A = np.tile(np.arange(5.0), (1, 3, 1))  # three identical rows
    assert np.allclose(pair_dissimilarities(A, None, DIFFERENCE), 0.0, atol=1e-12)
    unit = A / np.linalg.norm(A[0, 0])
    assert np.allclose(pair_dissimilarities(unit, None, ONE_MINUS, 2.0), 0.0, atol=1e-12)


def test_pairs_from_products_matches_upper_triangle():
    rng = np.random.default_rng(3)
    K = rng.standard_normal((40, 6, 6))
    d = np.diagonal(K, axis1=1, axis2=2)
    iu = np.triu_indices(6, 1)
    want = (d[:, :, None] + d[:, None, :] - K - K.transpose(0, 2, 1))[:, iu[0], iu[1]] * 0.25
    assert relative_error(pairs_from_products(K, DIFFERENCE, 0.25, n_jobs=2), want) < 1e-14
    assert np.allclose(pairs_from_products(K, ONE_MINUS), 1.0 - K[:, iu[0], iu[1]], rtol=0, atol=1e-15)


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="equal-shaped"):
        pair_dissimilarities(np.ones((2, 3, 4)), np.ones((2, 3, 5)), DIFFERENCE)
    with pytest.raises(ValueError, match="equal-shaped"):
        pair_dissimilarities(np.ones((3, 4)), None, DIFFERENCE)


@pytest.mark.parametrize("n_cols", [1, 5, 9000])
def test_group_sums_match_add_at(n_cols):
    rng = np.random.default_rng(n_cols)
    X = rng.standard_normal((37, n_cols))
    cells = rng.integers(0, 6, 37)
    cells[cells == 4] = 5  # cell 4 stays empty
    want = np.zeros((7, n_cols))
    np.add.at(want, cells, X)
    for n_jobs in (1, 2):
        got = group_sums(X, cells, 7, n_jobs=n_jobs)
        assert np.allclose(got, want, rtol=1e-14, atol=1e-13)
        assert np.all(got[4] == 0) and np.all(got[6] == 0)


def test_group_sums_rejects_bad_cells():
    with pytest.raises(ValueError, match="one entry per row"):
        group_sums(np.ones((3, 2)), np.zeros(2, dtype=int), 1)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        group_sums(np.ones((3, 2)), np.array([0, 1, 2]), 2)
