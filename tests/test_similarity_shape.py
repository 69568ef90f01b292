"""Shape metrics: netrep conventions (independent reimplementation), closed forms, triangle inequality."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes, sqrtm
from scipy.optimize import minimize_scalar
from scipy.stats import ortho_group

from neuroenc.errors import DataError, NonFiniteError, ShapeError, UnknownNameError
from neuroenc.similarity.shape import permutation_distance, shape_distance, stochastic_shape_distance


# ----------------------------------------------------------------------
# netrep's LinearMetric, written from its definition: zero-pad, centre,
# partially whiten (eigenvalues of X^T X clipped at 1e-7, total variance
# kept), rotate both by the SVD of Xw^T Yw, then score.
def netrep_whiten(X, alpha, tol=1e-7):
    if alpha > 1 - tol:
        return X
    lam, V = np.linalg.eigh(X.T @ X)
    lam = np.maximum(lam, tol)
    d = alpha + (1 - alpha) / np.sqrt(lam)
    new_var = np.sum(alpha**2 * lam + 2 * alpha * (1 - alpha) * np.sqrt(lam) + (1 - alpha) ** 2)
    d *= np.sqrt(lam.sum() / new_var)
    return X @ (V * d) @ V.T


def netrep_linear(X, Y, alpha, score):
    p = max(X.shape[1], Y.shape[1])
    X = np.pad(X, ((0, 0), (0, p - X.shape[1])))
    Y = np.pad(Y, ((0, 0), (0, p - Y.shape[1])))
    Xw, Yw = netrep_whiten(X - X.mean(0), alpha), netrep_whiten(Y - Y.mean(0), alpha)
    U, _, Vt = np.linalg.svd(Xw.T @ Yw)
    A, B = Xw @ U, Yw @ Vt.T
    if score == "euclidean":
        return np.linalg.norm(A - B)
    return np.arccos(np.clip(np.vdot(A, B) / (np.linalg.norm(A) * np.linalg.norm(B)), -1, 1))


def related(n, p, q, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * np.linspace(0.5, 2, p) + 1.0
    k = min(p, q)
    Y = X[:, :k] @ rng.standard_normal((k, q)) + noise * rng.standard_normal((n, q))
    return X, Y


SHAPES = [(50, 8, 8), (50, 8, 5), (20, 30, 12), (40, 40, 10), (15, 6, 25)]


@pytest.mark.parametrize("score", ["angular", "euclidean"])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_netrep_definition(shape, alpha, score):
    X, Y = related(*shape)
    expected = netrep_linear(X, Y, alpha, score)
    assert shape_distance(X, Y, alpha, score) == pytest.approx(expected, rel=1e-8)
    assert shape_distance(Y, X, alpha, score) == pytest.approx(expected, rel=1e-8)


def test_matches_netrep_package_when_installed():
    netrep = pytest.importorskip("netrep.metrics")
    X, Y = related(40, 6, 6)
    for alpha in (0.0, 0.5, 1.0):
        for score in ("angular", "euclidean"):
            ref = netrep.LinearMetric(alpha=alpha, score_method=score).fit_score(X, Y)
            assert shape_distance(X, Y, alpha, score) == pytest.approx(ref, rel=1e-8)


def canonical_correlations_classic(X, Y):
    """Eigen-formulation: singular values of Sxx^-1/2 Sxy Syy^-1/2."""
    X, Y = X - X.mean(0), Y - Y.mean(0)

    def inv_sqrt(S):
        w, V = np.linalg.eigh(S)
        return V @ np.diag(w**-0.5) @ V.T

    M = inv_sqrt(X.T @ X) @ X.T @ Y @ inv_sqrt(Y.T @ Y)
    return np.linalg.svd(M, compute_uv=False)


def test_closed_forms():
    X, Y = related(60, 7, 7, seed=2)
    rho = canonical_correlations_classic(X, Y)
    # alpha = 0: arccos of the mean canonical correlation.
    assert shape_distance(X, Y, 0.0) == pytest.approx(np.arccos(rho.mean()), rel=1e-9)
    # alpha = 1, euclidean: the orthogonal Procrustes residual.
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    R, _ = orthogonal_procrustes(Xc, Yc)
    assert shape_distance(X, Y, 1.0, "euclidean") == pytest.approx(np.linalg.norm(Xc @ R - Yc), rel=1e-10)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_invariances(alpha):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 6))
    Q = ortho_group.rvs(6, random_state=4)
    for Y in (X, X @ Q + 3.0):
        assert shape_distance(X, Y, alpha) == pytest.approx(0.0, abs=1e-6)
        assert shape_distance(X, Y, alpha, "euclidean") == pytest.approx(0.0, abs=1e-6 * np.linalg.norm(X))
    # Isotropic scaling: partial whitening (0 < alpha < 1) acts on absolute
    # eigenvalues, so only the end points forgive it (as netrep).
    scaled = shape_distance(X, 2.5 * X @ Q, alpha)
    if alpha in (0.0, 1.0):
        assert scaled == pytest.approx(0.0, abs=1e-6)
    else:
        assert scaled == pytest.approx(netrep_linear(X, 2.5 * X @ Q, alpha, "angular"), rel=1e-8, abs=1e-9)
    # Only CCA (alpha = 0) forgives an arbitrary invertible map.
    A = rng.standard_normal((6, 6))
    assert shape_distance(X, X @ A, 0.0) == pytest.approx(0.0, abs=1e-6)
    if alpha > 0:
        assert shape_distance(X, X @ A, alpha) > 1e-3
    # Shuffling stimuli breaks the correspondence.
    assert shape_distance(X, X[rng.permutation(40)], alpha) > 0.5


def test_angular_range_and_constant():
    rng = np.random.default_rng(5)
    for _ in range(5):
        X, Y = rng.standard_normal((12, 4)), rng.standard_normal((12, 9))
        for alpha in (0.0, 1.0):
            assert 0.0 <= shape_distance(X, Y, alpha) <= np.pi / 2
    const = np.full((12, 3), 2.0)
    assert shape_distance(const, rng.standard_normal((12, 3))) == pytest.approx(np.pi / 2)
    assert shape_distance(const, const) == 0.0


def triangle_violations(distance, reps):
    worst = 0.0
    for a, b, c in itertools.permutations(range(len(reps)), 3):
        d_ac, d_ab, d_bc = distance(reps[a], reps[c]), distance(reps[a], reps[b]), distance(reps[b], reps[c])
        worst = max(worst, d_ac - d_ab - d_bc)
    return worst


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("score", ["angular", "euclidean"])
def test_triangle_inequality(alpha, score):
    rng = np.random.default_rng(6)
    base = rng.standard_normal((30, 5))
    reps = [base @ rng.standard_normal((5, 5)) + s * rng.standard_normal((30, 5)) for s in (0.1, 0.5, 1, 2, 4)]
    assert triangle_violations(lambda x, y: shape_distance(x, y, alpha, score), reps) <= 1e-9


def test_triangle_inequality_mixed_widths_angular():
    rng = np.random.default_rng(7)
    reps = [rng.standard_normal((25, p)) for p in (3, 5, 8, 12)]
    for alpha in (0.0, 0.4, 1.0):
        assert triangle_violations(lambda x, y, a=alpha: shape_distance(x, y, a), reps) <= 1e-9


# ----------------------------------------------------------------------
# permutation metric
def permutation_brute_force(X, Y, score):
    p = max(X.shape[1], Y.shape[1])
    X = np.pad(X - X.mean(0), ((0, 0), (0, p - X.shape[1])))
    Y = np.pad(Y - Y.mean(0), ((0, 0), (0, p - Y.shape[1])))
    best = -np.inf
    for perm in itertools.permutations(range(p)):
        best = max(best, np.vdot(X[:, perm], Y))
    if score == "euclidean":
        return np.sqrt(np.vdot(X, X) + np.vdot(Y, Y) - 2 * best)
    return np.arccos(best / (np.linalg.norm(X) * np.linalg.norm(Y)))


@pytest.mark.parametrize("score", ["angular", "euclidean"])
def test_permutation_brute_force(score):
    rng = np.random.default_rng(8)
    for p, q in ((4, 4), (3, 5), (5, 2)):
        X, Y = rng.standard_normal((20, p)), rng.standard_normal((20, q))
        assert permutation_distance(X, Y, score) == pytest.approx(permutation_brute_force(X, Y, score), rel=1e-10)


def test_permutation_closed_forms_and_triangle():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((30, 6))
    perm = rng.permutation(6)
    assert permutation_distance(X, X[:, perm] + 4.0) == pytest.approx(0.0, abs=1e-6)
    assert permutation_distance(X, X[:, perm], "euclidean") == pytest.approx(0.0, abs=1e-6)
    # A rotation is not a permutation.
    assert permutation_distance(X, X @ ortho_group.rvs(6, random_state=1)) > 0.1
    reps = [X + s * rng.standard_normal(X.shape) for s in (0.2, 1.0, 3.0)] + [rng.standard_normal((30, 6))]
    for score in ("angular", "euclidean"):
        assert triangle_violations(lambda x, y, s=score: permutation_distance(x, y, s), reps) <= 1e-9


# ----------------------------------------------------------------------
# Gaussian stochastic shape metric
def bures_sq(A, B):
    sA = sqrtm(A).real
    return np.trace(A) + np.trace(B) - 2 * np.trace(sqrtm(sA @ B @ sA).real)


def gsm_at(mx, Sx, my, Sy, T, alpha):
    """Duong et al.'s objective at a fixed alignment T (Y mapped by T)."""
    means = np.sum((mx - my @ T) ** 2, axis=1)
    covs = np.array([bures_sq(a, T.T @ b @ T) for a, b in zip(Sx, Sy)])
    return np.sqrt(max(np.mean(alpha * means + (2 - alpha) * covs), 0.0))


def netrep_gsm_alignment(mx, Sx, my, Sy, n_iter=3000, tol=1e-15):
    """netrep's alternating scheme at alpha = 1 (both row blocks weighted 1)."""
    sX = [sqrtm(s).real for s in Sx]
    sY = [sqrtm(s).real for s in Sy]
    T = orthogonal_procrustes(my, mx)[0]
    last = np.inf
    for _ in range(n_iter):
        Qs = [orthogonal_procrustes(T.T @ sy, sx)[0] for sx, sy in zip(sX, sY)]
        A = np.vstack([mx] + sX)
        B = np.vstack([my] + [Q.T @ sy for Q, sy in zip(Qs, sY)])
        T = orthogonal_procrustes(B, A)[0]
        loss = np.linalg.norm(A - B @ T)
        if last - loss < tol:
            break
        last = loss
    return T


def trials(n, r, p, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal((n, 1, p)) * 2
    mix = rng.standard_normal((n, p, p)) * scale
    return mean + rng.standard_normal((n, r, p)) @ mix


def moments(T):
    return T.mean(1), np.array([np.cov(t.T) for t in T])


def test_stochastic_matches_netrep_scheme():
    for seed in range(3):
        X, Y = trials(6, 8, 3, seed), trials(6, 8, 3, seed + 10, scale=0.5)
        (mx, Sx), (my, Sy) = moments(X), moments(Y)
        T = netrep_gsm_alignment(mx, Sx, my, Sy)
        expected = gsm_at(mx, Sx, my, Sy, T, 1.0)
        assert stochastic_shape_distance(X, Y, center=False) == pytest.approx(expected, rel=1e-8)
        assert stochastic_shape_distance((mx, Sx), (my, Sy), center=False) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("alpha", [0.0, 0.7, 1.0, 2.0])
def test_stochastic_global_optimum_in_2d(alpha):
    # p = 2: every orthogonal T is a rotation or a reflection by an angle.
    X, Y = trials(5, 6, 2, 1), trials(5, 6, 2, 2, scale=0.7)
    (mx, Sx), (my, Sy) = moments(X), moments(Y)

    def at(theta, flip):
        c, s = np.cos(theta), np.sin(theta)
        T = np.array([[c, -s], [s, c]]) @ np.diag([1.0, flip])
        return gsm_at(mx, Sx, my, Sy, T, alpha)

    best = np.inf
    for flip in (1.0, -1.0):
        grid = np.linspace(0, 2 * np.pi, 721)
        values = [at(t, flip) for t in grid]
        t0 = grid[int(np.argmin(values))]
        res = minimize_scalar(lambda t, f=flip: at(t, f), bounds=(t0 - 0.01, t0 + 0.01), method="bounded")
        best = min(best, res.fun, min(values))
    assert stochastic_shape_distance(X, Y, alpha, center=False) == pytest.approx(best, rel=1e-6)


def test_stochastic_closed_forms():
    X = trials(7, 5, 4, 3)
    Q = ortho_group.rvs(4, random_state=0)
    assert stochastic_shape_distance(X, X @ Q + 1.5) == pytest.approx(0.0, abs=1e-6)
    assert stochastic_shape_distance(X, X @ Q, alpha=0.0) == pytest.approx(0.0, abs=1e-6)
    # alpha = 2: the Procrustes distance of the centred means, times sqrt(2 / n).
    Y = trials(7, 5, 4, 4)
    mx, my = X.mean(1), Y.mean(1)
    expected = shape_distance(mx, my, 1.0, "euclidean") * np.sqrt(2 / 7)
    assert stochastic_shape_distance(X, Y, alpha=2.0) == pytest.approx(expected, rel=1e-10)
    # identity group: the objective without alignment.
    (mx, Sx), (my, Sy) = moments(X), moments(Y)
    mx, my = mx - mx.mean(0), my - my.mean(0)
    expected = gsm_at(mx, Sx, my, Sy, np.eye(4), 0.5)
    assert stochastic_shape_distance(X, Y, 0.5, group="identity") == pytest.approx(expected, rel=1e-8)


def test_stochastic_permutation_group_brute_force():
    X, Y = trials(5, 6, 3, 5), trials(5, 6, 3, 6)
    (mx, Sx), (my, Sy) = moments(X), moments(Y)
    best = min(gsm_at(mx, Sx, my, Sy, np.eye(3)[list(perm)], 1.0) for perm in itertools.permutations(range(3)))
    assert stochastic_shape_distance(X, Y, group="permutation", center=False) == pytest.approx(best, rel=1e-8)
    perm = [2, 0, 1]
    assert stochastic_shape_distance(X, X[..., perm], group="permutation") == pytest.approx(0.0, abs=1e-6)


def test_stochastic_factor_routes_agree():
    # Fewer trials than units (trial factors) and more (covariance square roots).
    for r, p in ((3, 6), (12, 4)):
        X, Y = trials(5, r, p, 7), trials(5, r, p, 8)
        assert stochastic_shape_distance(X, Y) == pytest.approx(stochastic_shape_distance(moments(X), moments(Y)))


def test_stochastic_triangle_inequality():
    base = trials(6, 10, 3, 9)
    rng = np.random.default_rng(0)
    reps = [base + s * rng.standard_normal(base.shape) for s in (0.3, 1.0, 2.0)] + [trials(6, 10, 3, 11)]
    for alpha in (0.5, 1.0, 2.0):
        assert triangle_violations(lambda x, y, a=alpha: stochastic_shape_distance(x, y, a), reps) <= 1e-6


def test_stochastic_mixed_widths_and_trials():
    X, Y = trials(6, 8, 3, 1), trials(6, 5, 5, 2)
    d = stochastic_shape_distance(X, Y)
    assert d > 0 and d == pytest.approx(stochastic_shape_distance(Y, X), rel=1e-6)


# ----------------------------------------------------------------------
def test_real_haxby(haxby_dir, data_dir):
    from neuroenc.datasets import load_haxby

    bd = load_haxby("volumes", data_dir=data_dir)
    bd = bd.select(condition=sorted(set(bd.obs["condition"]) - {"rest"}))
    means = bd.average(by="condition", within="run")
    data = means.data.astype(np.float64)
    rois = [data[:, :40], data[:, 40:100], data[:, 100:130]]
    for alpha in (0.0, 0.5, 1.0):
        for score in ("angular", "euclidean"):
            expected = netrep_linear(rois[0], rois[1], alpha, score)
            assert shape_distance(rois[0], rois[1], alpha, score) == pytest.approx(expected, rel=1e-8)
        assert triangle_violations(lambda x, y, a=alpha: shape_distance(x, y, a), rois) <= 1e-9
    assert shape_distance(means, means.data) == pytest.approx(0.0, abs=1e-6)  # BrainData input
    # Trial-resolved: the 108 volumes of each category as trials, two groups of 10 voxels.
    cats = sorted(set(bd.obs["condition"]))
    vols = np.stack([bd.data[(bd.obs["condition"] == c).to_numpy()] for c in cats]).astype(np.float64)
    X, Y = vols[..., :10], vols[..., 10:20]
    d = stochastic_shape_distance(X, Y)
    assert d == pytest.approx(stochastic_shape_distance(moments(X), moments(Y)), rel=1e-8)
    assert stochastic_shape_distance(X, X[..., ::-1]) == pytest.approx(0.0, abs=1e-6 * d)


# ----------------------------------------------------------------------
def test_bad_input():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((10, 4))
    with pytest.raises(ShapeError, match=r"\(10, 3\).*\(8, 4\)"):
        shape_distance(X, Y[:8])
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        shape_distance(X, Y, alpha=1.5)
    with pytest.raises(UnknownNameError, match="angular"):
        shape_distance(X, Y, score="cosine")
    with pytest.raises(UnknownNameError):
        permutation_distance(X, Y, score="cosine")
    bad = X.copy()
    bad[2, 2] = np.nan
    with pytest.raises(NonFiniteError):
        shape_distance(bad, Y)
    with pytest.raises(NonFiniteError):
        permutation_distance(X, np.where(Y > 10, Y, np.inf))


def test_stochastic_bad_input():
    X = trials(4, 5, 3, 0)
    with pytest.raises(DataError, match=r"\[0, 2\]"):
        stochastic_shape_distance(X, X, alpha=3)
    with pytest.raises(ShapeError, match="trial-resolved"):
        stochastic_shape_distance(X[:, 0], X[:, 0])
    with pytest.raises(ShapeError, match="at least 2"):
        stochastic_shape_distance(X[:, :1], X[:, :1])
    with pytest.raises(ShapeError, match=r"\(4, 3\).*\(3, 3\)"):
        stochastic_shape_distance(X, X[:3])
    m, S = moments(X)
    with pytest.raises(ShapeError, match="covariances"):
        stochastic_shape_distance((m, S[:, :2, :2]), (m, S))
    S_bad = S.copy()
    S_bad[1] = -np.eye(3)
    with pytest.raises(DataError, match="positive semi-definite"):
        stochastic_shape_distance((m, S_bad), (m, S))
    with pytest.raises(UnknownNameError, match="orthogonal"):
        stochastic_shape_distance(X, X, group="affine")
    X_nan = X.copy()
    X_nan[0, 0, 0] = np.nan
    with pytest.raises(NonFiniteError):
        stochastic_shape_distance(X_nan, X)
