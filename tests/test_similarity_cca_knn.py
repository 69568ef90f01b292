"""SVCCA / PWCCA against the classical CCA formulas; mutual k-NN against scikit-learn's neighbours."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.neighbors import NearestNeighbors

from neuroenc.errors import DataError, NonFiniteError, ShapeError, UnknownNameError
from neuroenc.similarity.cca import canonical_correlations, pwcca, svcca
from neuroenc.similarity.knn import mutual_knn, nearest_neighbours


# ----------------------------------------------------------------------
# classical CCA: whiten with Sxx^-1/2, Syy^-1/2 and take the SVD of the cross-covariance
def inv_sqrt(S):
    w, V = np.linalg.eigh(S)
    return V @ np.diag(w**-0.5) @ V.T


def classic_cca(X, Y):
    """Canonical correlations and the canonical weight vectors of X (columns)."""
    X, Y = X - X.mean(0), Y - Y.mean(0)
    Wx, Wy = inv_sqrt(X.T @ X), inv_sqrt(Y.T @ Y)
    U, rho, _ = np.linalg.svd(Wx @ X.T @ Y @ Wy, full_matrices=False)
    return rho, Wx @ U


def pca_reduce(X, variance):
    X = X - X.mean(0)
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    frac = np.cumsum(s**2) / np.sum(s**2)
    k = int(np.argmax(frac >= variance - 1e-12)) + 1
    return U[:, :k] * s[:k]


def pwcca_reference(X, Y):
    """Morcos et al.: weights from the narrower representation's canonical variates."""
    if Y.shape[1] < X.shape[1]:
        X, Y = Y, X
    rho, A = classic_cca(X, Y)
    Xc = X - X.mean(0)
    H = Xc @ A[:, : rho.size]
    H /= np.linalg.norm(H, axis=0)
    weights = np.abs(H.T @ Xc).sum(axis=1)
    return weights @ rho / weights.sum()


def related(n, p, q, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) @ np.diag(np.linspace(0.3, 3, p)) + 2.0
    Y = X @ rng.standard_normal((p, q)) + noise * rng.standard_normal((n, q))
    return X, Y


@pytest.mark.parametrize("shape", [(100, 5, 5), (80, 4, 9), (80, 9, 4)])
def test_canonical_correlations_and_pwcca_match_classic_formulas(shape):
    X, Y = related(*shape)
    rho, _ = classic_cca(X, Y)
    np.testing.assert_allclose(canonical_correlations(X, Y), rho, rtol=1e-10)
    assert svcca(X, Y, variance=1.0) == pytest.approx(rho.mean(), rel=1e-10)
    assert pwcca(X, Y) == pytest.approx(pwcca_reference(X, Y), rel=1e-10)
    assert pwcca(Y, X) == pytest.approx(pwcca_reference(Y, X), rel=1e-10)


@pytest.mark.parametrize("variance", [0.5, 0.9, 0.99])
def test_svcca_matches_pca_then_cca(variance):
    X, Y = related(120, 10, 12, seed=1, noise=2.0)
    rho, _ = classic_cca(pca_reduce(X, variance), pca_reduce(Y, variance))
    assert svcca(X, Y, variance=variance) == pytest.approx(rho.mean(), rel=1e-10)
    Xr, Yr = pca_reduce(X, 1.0)[:, :3], pca_reduce(Y, 1.0)[:, :3]
    assert svcca(X, Y, n_components=3) == pytest.approx(classic_cca(Xr, Yr)[0].mean(), rel=1e-10)


def test_closed_forms():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((60, 6))
    A = rng.standard_normal((6, 6))  # invertible
    Q = ortho_group.rvs(6, random_state=3)
    for Y in (X, X @ Q, 5 * X + 1, X @ A):
        assert svcca(X, Y, n_components=6) == pytest.approx(1.0, abs=1e-10)
        assert pwcca(X, Y) == pytest.approx(1.0, abs=1e-10)
    # SVCCA with a variance threshold forgives rotations and scaling, not arbitrary maps.
    assert svcca(X, 3 * X @ Q) == pytest.approx(1.0, abs=1e-10)
    shuffled = X[rng.permutation(60)]
    assert svcca(X, shuffled, n_components=6) < 0.4
    assert pwcca(X, shuffled) < 0.4


def test_more_units_than_stimuli_saturates():
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((10, 20)), rng.standard_normal((10, 30))
    np.testing.assert_allclose(canonical_correlations(X, Y), 1.0, atol=1e-10)
    assert svcca(X, Y, n_components=3) < 0.95  # the SVD reduction is what makes SVCCA usable here


def test_constant_and_range():
    rng = np.random.default_rng(5)
    Y = rng.standard_normal((20, 3))
    const = np.full((20, 4), 7.0)
    assert canonical_correlations(const, Y).size == 0
    assert svcca(const, Y) == 0.0 and pwcca(const, Y) == 0.0 and pwcca(Y, const) == 0.0
    for seed in range(4):
        X, Y = related(30, 3, 5, seed=seed, noise=4.0)
        for value in (svcca(X, Y), pwcca(X, Y)):
            assert 0.0 <= value <= 1.0


def test_cca_bad_input():
    X, Y = related(20, 3, 4)
    with pytest.raises(ShapeError, match=r"\(20, 3\).*\(19, 4\)"):
        svcca(X, Y[:19])
    with pytest.raises(ShapeError, match=r"\(20, 3\).*\(19, 4\)"):
        pwcca(X, Y[:19])
    with pytest.raises(DataError, match="n_components"):
        svcca(X, Y, n_components=0)
    with pytest.raises(DataError, match="variance"):
        svcca(X, Y, variance=1.5)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(NonFiniteError):
        pwcca(bad, Y)


# ----------------------------------------------------------------------
# mutual k-NN
def knn_sets(X, k, metric):
    nn = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute").fit(X)
    return [set(row) for row in nn.kneighbors(return_distance=False)]


def mutual_knn_reference(X, Y, k, metric):
    a, b = knn_sets(X, k, metric), knn_sets(Y, k, metric)
    return np.mean([len(s & t) / k for s, t in zip(a, b)])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("k", [1, 5, 20])
def test_mutual_knn_matches_sklearn(metric, k):
    X, Y = related(120, 8, 16, seed=6, noise=3.0)
    assert mutual_knn(X, Y, k, distance=metric) == pytest.approx(mutual_knn_reference(X, Y, k, metric), abs=1e-12)
    for row, expected in zip(nearest_neighbours(X, k, distance=metric), knn_sets(X, k, metric)):
        assert set(row) == expected


def test_mutual_knn_closed_forms():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((80, 10))
    Q = ortho_group.rvs(10, random_state=8)
    for metric in ("cosine", "euclidean"):
        assert mutual_knn(X, X @ Q * 3.0, 7, distance=metric) == 1.0
    assert mutual_knn(X, X * rng.uniform(0.5, 2, (80, 1)), 7) == 1.0  # per-stimulus scale: cosine only
    assert mutual_knn(X, X + 10.0, 7, distance="euclidean") == 1.0
    chance = np.mean([mutual_knn(X, X[rng.permutation(80)], 8) for _ in range(10)])
    assert chance == pytest.approx(8 / 79, abs=0.04)


def test_ties_broken_by_index():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    nn = nearest_neighbours(X, 2, distance="euclidean")
    np.testing.assert_array_equal(nn[0], [4, 1])
    np.testing.assert_array_equal(nn[1], [2, 3])
    np.testing.assert_array_equal(nn[3], [1, 2])


def test_real_haxby_regions(haxby_dir, data_dir):
    from neuroenc.datasets import load_haxby

    bd = load_haxby("volumes", data_dir=data_dir)
    bd = bd.select(condition=sorted(set(bd.obs["condition"]) - {"rest"}))
    means = bd.average(by="condition", within="run")
    data = means.data.astype(np.float64)
    X, Y = data[:, :265], data[:, 265:]
    for metric in ("cosine", "euclidean"):
        value = mutual_knn(X, Y, 10, distance=metric)
        assert value == pytest.approx(mutual_knn_reference(X, Y, 10, metric), abs=1e-12)
        assert value > 2 * 10 / 95  # the two halves share the category structure
    assert mutual_knn(means, data, 10) == 1.0  # BrainData input
    small_x, small_y = data[:, :20], data[:, 20:45]
    assert pwcca(small_x, small_y) == pytest.approx(pwcca_reference(small_x, small_y), rel=1e-8)
    assert canonical_correlations(small_x, small_y) == pytest.approx(classic_cca(small_x, small_y)[0], rel=1e-8)


def test_knn_bad_input():
    rng = np.random.default_rng(9)
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((10, 4))
    for k in (0, 10, 2.5, True):
        with pytest.raises(DataError, match="k must"):
            mutual_knn(X, Y, k)
    with pytest.raises(UnknownNameError, match="cosine"):
        mutual_knn(X, Y, 3, distance="manhattan")
    zero = X.copy()
    zero[4] = 0
    with pytest.raises(DataError, match="Stimulus 4"):
        mutual_knn(zero, Y, 3)
    assert 0 <= mutual_knn(zero, Y, 3, distance="euclidean") <= 1
    with pytest.raises(ShapeError, match=r"\(10, 3\).*\(9, 4\)"):
        mutual_knn(X, Y[:9], 3)
    with pytest.raises(NonFiniteError):
        mutual_knn(X, np.full((10, 4), np.inf), 3)
