"""SPD geometry of neuroenc.riemann: parity with pyRiemann 0.12, properties, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from neuroenc.errors import NonFiniteError, NotSPDError, ShapeError, UnknownNameError
from neuroenc.riemann import (
    DISTANCE_METRICS,
    MEAN_METRICS,
    TangentSpace,
    distance,
    expm,
    invsqrtm,
    logm,
    mean,
    pairwise_distance,
    powm,
    sqrtm,
    tangent_space,
    untangent_space,
)
from neuroenc.riemann.means import ConvergenceWarning
from neuroenc.riemann.tangent import _unupper

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pyriemann.geometry.base as pr_base
    import pyriemann.geometry.distance as pr_dist
    import pyriemann.geometry.mean as pr_mean
    import pyriemann.geometry.tangentspace as pr_ts
    from pyriemann.tangentspace import TangentSpace as PrTangentSpace

TOL = 1e-8
TANGENT_METRICS = ["riemann", "logeuclid", "euclid", "wasserstein"]


def rel(a, b) -> float:
    """Max relative difference; NaN in the reference ``b`` (pyRiemann) is ignored, NaN in ``a`` fails."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if not np.isfinite(a).all():
        return np.inf
    ok = np.isfinite(b)
    a, b = a[ok], b[ok]
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def well_conditioned(n_matrices: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n_matrices, n, 3 * n))
    return A @ A.transpose(0, 2, 1) / (3 * n)


def ill_conditioned(n_matrices: int, n: int, seed: int, cond: float = 1e8) -> np.ndarray:
    """Matrices of condition number ~cond that share their ill-conditioning.

    ``X_i = S^{1/2} E_i S^{1/2}`` with ``cond(S) = cond`` and well-conditioned
    ``E_i``: as covariances of one recording, each matrix is ill-conditioned
    but the whitened pairs are not, so the distances are well posed in
    double precision and both libraries must agree.
    """
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    S12 = (Q * np.sqrt(np.logspace(0, -np.log10(cond), n))) @ Q.T
    E = well_conditioned(n_matrices, n, seed + 1) + 0.2 * np.eye(n)
    X = S12 @ E @ S12
    return 0.5 * (X + X.transpose(0, 2, 1))


@pytest.fixture(scope="module")
def physionet_covs_volts(data_dir):
    """Covariances (V^2, entries ~1e-10) of the 45 PhysioNet imagery epochs, 64 channels."""
    from neuroenc.datasets import load_physionet_mi

    epochs = load_physionet_mi(subject=1, task="imagery_lr", data_dir=data_dir)
    X = epochs.data - epochs.data.mean(axis=-1, keepdims=True)
    return X @ X.transpose(0, 2, 1) / X.shape[-1]


@pytest.fixture(scope="module")
def physionet_covs(physionet_covs_volts):
    """The same in microvolt^2 (condition numbers up to ~4e5)."""
    return physionet_covs_volts * 1e12


@pytest.fixture(scope="module", params=["well", "ill", "physionet"])
def dataset(request):
    if request.param == "well":
        return well_conditioned(12, 6, 0), well_conditioned(5, 6, 1)
    if request.param == "ill":
        X = ill_conditioned(15, 8, 2)
        assert np.linalg.cond(X).min() > 1e7
        return X[:10], X[10:]
    covs = request.getfixturevalue("physionet_covs")
    assert covs.shape == (45, 64, 64)
    return covs[:30], covs[30:]


# --------------------------------------------------------------------------- matrix functions


@pytest.mark.parametrize(
    "ours,ref",
    [(sqrtm, pr_base.sqrtm), (invsqrtm, pr_base.invsqrtm), (logm, pr_base.logm), (expm, pr_base.expm)],
    ids=["sqrtm", "invsqrtm", "logm", "expm"],
)
def test_matfuncs_parity(dataset, ours, ref):
    X, _ = dataset
    if ours is expm:
        X = X / np.trace(X, axis1=1, axis2=2).max()  # keep exp from overflowing on covariances in uV^2
    assert rel(ours(X), ref(X)) < TOL
    assert rel(ours(X[0]), ref(X[0])) < TOL  # a single matrix


@pytest.mark.parametrize("p", [-1.5, 0.5, 2.0])
def test_powm_parity(dataset, p):
    X, _ = dataset
    assert rel(powm(X, p), pr_base.powm(X, p)) < TOL


def test_expm_of_symmetric_indefinite_matrices():
    T = logm(well_conditioned(4, 5, 3) + np.eye(5)) - np.eye(5)
    assert rel(expm(T), pr_base.expm(T)) < TOL
    assert rel(logm(expm(T)), T) < 1e-12
    assert rel(sqrtm(X := well_conditioned(3, 5, 4)) @ sqrtm(X), X) < 1e-12


def test_matfuncs_batch_shapes():
    X = well_conditioned(6, 4, 5).reshape(2, 3, 4, 4)
    assert logm(X).shape == (2, 3, 4, 4)
    assert rel(logm(X)[1, 2], pr_base.logm(X[1, 2])) < TOL


# --------------------------------------------------------------------------- distances


def reference_tol(X: np.ndarray, metric: str) -> float:
    """Parity threshold, or a skip where pyRiemann's own error exceeds it.

    pyRiemann's logdet takes ``slogdet(A @ B)``: 1e-8 (PhysioNet) to several percent (cond 1e8) off;
    Wasserstein square roots of eigenvalues ~1e-16 lose ~7 digits in both libraries and pyRiemann's
    pairwise distances and mean give NaN there. Our accuracy on these inputs is checked against
    mpmath instead (test_accuracy_ill_conditioned, test_logdet_accuracy_physionet).
    """
    cond = np.linalg.cond(X).max()
    if metric == "logdet" and cond > 1e5:
        pytest.skip("pyRiemann's logdet (slogdet(A @ B)) is inaccurate here; checked against mpmath instead")
    if metric == "wasserstein" and cond > 1e7:
        pytest.skip("Wasserstein loses ~7 digits in both libraries at cond 1e8; checked against mpmath instead")
    return TOL


@pytest.mark.parametrize("metric", DISTANCE_METRICS)
def test_distance_parity(dataset, metric):
    X, Y = dataset
    tol = reference_tol(X, metric)
    # batch against one matrix (pyRiemann adds a trailing axis), and element-wise
    assert rel(distance(X, Y[0], metric), pr_dist.distance(X, Y[0], metric)[:, 0]) < tol
    assert rel(distance(X[:5], Y[:5], metric), pr_dist.distance(X[:5], Y[:5], metric)) < tol
    single = distance(X[0], Y[0], metric, squared=True)
    assert isinstance(single, float)
    assert rel(single, pr_dist.distance(X[0], Y[0], metric, squared=True)) < tol


@pytest.mark.parametrize("metric", DISTANCE_METRICS)
def test_pairwise_distance_parity(dataset, metric):
    X, Y = dataset
    tol = reference_tol(X, metric)
    D = pairwise_distance(X, metric=metric)
    assert rel(D, pr_dist.pairwise_distance(X, metric=metric)) < tol
    assert np.array_equal(D, D.T)
    assert np.all(np.diag(D) == 0)
    assert rel(pairwise_distance(X, Y, metric=metric), pr_dist.pairwise_distance(X, Y, metric=metric)) < tol
    D2 = pairwise_distance(X, Y, metric=metric, squared=True)
    assert rel(D2, pr_dist.pairwise_distance(X, Y, metric=metric, squared=True)) < tol


def test_pairwise_distance_threads_agree(physionet_covs):
    X = physionet_covs
    D1 = pairwise_distance(X, metric="riemann", n_jobs=1)
    D2 = pairwise_distance(X, metric="riemann", n_jobs=2)
    assert np.array_equal(D1, D2)
    assert rel(D1[3:9, 10:20], distance(X[3:9, None], X[None, 10:20])) < 1e-12


def _mp_distances(A: np.ndarray, B: np.ndarray) -> dict[str, float]:
    """riemann, logdet and wasserstein distances in 50-digit arithmetic."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    Am = mpmath.matrix(A.tolist())
    Bm = mpmath.matrix(B.tolist())
    ld = mpmath.log(mpmath.det((Am + Bm) / 2)) - (mpmath.log(mpmath.det(Am)) + mpmath.log(mpmath.det(Bm))) / 2
    L = mpmath.cholesky(Bm)
    Li = mpmath.inverse(L)
    ev = mpmath.eigsy(Li * Am * Li.T)[0]
    ev_w = mpmath.eigsy(L.T * Am * L)[0]
    tr = sum(Am[i, i] + Bm[i, i] for i in range(A.shape[0]))
    return {
        "riemann": float(mpmath.sqrt(sum(mpmath.log(e) ** 2 for e in ev))),
        "logdet": float(mpmath.sqrt(ld)),
        "wasserstein": float(mpmath.sqrt(tr - 2 * sum(mpmath.sqrt(e) for e in ev_w))),
    }


def test_accuracy_ill_conditioned():
    """Against 50-digit arithmetic on cond ~1e8 pairs, where pyRiemann itself is off.

    riemann and logdet are computed from the eigenvalues of the whitened pair
    (well conditioned here): 1e-9, the limit set by rounding the inputs
    (eps times the condition number). Wasserstein needs square roots of
    eigenvalues ~1e-16 whose absolute error is ~1e-16: about 1e-6 in both
    libraries, which is what double precision gives on this formula.
    """
    X = ill_conditioned(4, 6, 7)
    for i, j in [(0, 1), (2, 3)]:
        exact = _mp_distances(X[i], X[j])
        for metric, tol in [("riemann", 1e-9), ("logdet", 1e-9), ("wasserstein", 1e-5)]:
            assert abs(distance(X[i], X[j], metric) - exact[metric]) < tol * exact[metric], metric
        pr_logdet = pr_dist.distance(X[i], X[j], "logdet")
        assert abs(pr_logdet - exact["logdet"]) > 1e-9 * exact["logdet"]  # why the parity test skips it


def test_logdet_accuracy_physionet(physionet_covs):
    """On real covariances pyRiemann's logdet is 1e-8 off; ours matches 30-digit arithmetic."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 30
    A, B = physionet_covs[0], physionet_covs[2]
    Am, Bm = mpmath.matrix(A.tolist()), mpmath.matrix(B.tolist())
    d2 = mpmath.log(mpmath.det((Am + Bm) / 2)) - (mpmath.log(mpmath.det(Am)) + mpmath.log(mpmath.det(Bm))) / 2
    exact = float(mpmath.sqrt(d2))
    assert abs(distance(A, B, "logdet") - exact) < 1e-12 * exact
    assert abs(pr_dist.distance(A, B, "logdet") - exact) > 1e-9 * exact


def test_distance_properties():
    X = well_conditioned(8, 5, 6)
    for metric in DISTANCE_METRICS:
        D = pairwise_distance(X, metric=metric)
        off = ~np.eye(len(X), dtype=bool)
        assert np.allclose(D[off], pairwise_distance(X, X, metric=metric).T[off], rtol=1e-10), metric
        # d(A, A) = 0 up to rounding (the Wasserstein and KL forms cancel: sqrt(eps))
        assert np.all(distance(X, X, metric) < 1e-7), metric
    # affine invariance of the Riemannian distance: d(G A G^T, G B G^T) = d(A, B)
    G = np.random.default_rng(7).standard_normal((5, 5))
    GX = G @ X @ G.T
    assert rel(pairwise_distance(GX, metric="riemann"), pairwise_distance(X, metric="riemann")) < 1e-10
    # invariance under inversion, and the closed form for commuting matrices
    assert rel(distance(np.linalg.inv(X), np.linalg.inv(X[0])), distance(X, X[0])) < 1e-10
    A = np.diag([1.0, 2.0, 4.0])
    B = np.diag([2.0, 2.0, 1.0])
    assert abs(distance(A, B) - np.sqrt(np.log(2) ** 2 + np.log(4) ** 2)) < 1e-14
    # 1 x 1 matrices: |log a - log b|
    assert abs(distance(np.array([[2.0]]), np.array([[8.0]])) - np.log(4.0)) < 1e-15


def test_distance_broadcasting():
    X = well_conditioned(6, 4, 8)
    grid = distance(X[:2, None], X[None, :], "riemann")
    assert grid.shape == (2, 6)
    assert rel(grid, pairwise_distance(X[:2], X)) < 1e-12
    with pytest.raises(ShapeError, match="broadcast"):
        distance(X[:2], X[:3])
    with pytest.raises(ShapeError, match="3 x 3"):
        distance(X, well_conditioned(1, 3, 0)[0])


# --------------------------------------------------------------------------- means


@pytest.mark.parametrize("metric", MEAN_METRICS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_mean_parity(dataset, metric, weighted):
    X, _ = dataset
    tol = reference_tol(X, metric)
    w = np.random.default_rng(9).uniform(0.5, 3.0, len(X)) if weighted else None
    with warnings.catch_warnings(record=True) as pr_warnings:
        warnings.simplefilter("always")
        ref = pr_mean.gmean(X, metric=metric, sample_weight=w)
    with warnings.catch_warnings(record=True) as our_warnings:
        warnings.simplefilter("always")
        ours = mean(X, metric, sample_weight=w)
    assert rel(ours, ref) < tol
    if metric in ("logdet", "wasserstein"):
        # same iterations as pyRiemann: both stop at maxiter on the same data (Wasserstein, PhysioNet)
        pr_stopped = any("Convergence not reached" in str(m.message) for m in pr_warnings)
        assert pr_stopped == any(issubclass(m.category, ConvergenceWarning) for m in our_warnings)


def test_mean_properties():
    X = well_conditioned(10, 5, 10)
    for metric in MEAN_METRICS:
        M = mean(np.repeat(X[:1], 4, axis=0), metric)
        assert rel(M, X[0]) < 1e-10, metric
        # weights are normalised
        w = np.arange(1.0, 11.0)
        assert rel(mean(X, metric, sample_weight=3 * w), mean(X, metric, sample_weight=w)) < 1e-10, metric
        # a zero weight removes the matrix
        w0 = np.r_[0.0, np.ones(9)]
        assert rel(mean(X, metric, sample_weight=w0), mean(X[1:], metric)) < 1e-9, metric
    # the Riemannian mean of two matrices is the geodesic midpoint
    A, B = X[0], X[1]
    A12, Am12 = sqrtm(A), invsqrtm(A)
    assert rel(mean(X[:2]), A12 @ sqrtm(Am12 @ B @ Am12) @ A12) < 1e-10
    # it is the zero of the gradient and it is affine-equivariant
    M = mean(X, tol=1e-12)
    Mm12 = invsqrtm(M)
    assert np.linalg.norm(logm(Mm12 @ X @ Mm12).mean(0)) < 1e-11
    G = np.random.default_rng(11).standard_normal((5, 5))
    assert rel(mean(G @ X @ G.T, tol=1e-12), G @ M @ G.T) < 1e-9


def test_mean_riemann_converges_tighter_than_pyriemann():
    """Same fixed point, fewer passes: the error against a tightly converged mean is smaller."""
    X = well_conditioned(40, 8, 12)
    exact = mean(X, tol=1e-14, maxiter=200)
    assert rel(mean(X), exact) <= rel(pr_mean.mean_riemann(X), exact) + 1e-13
    assert rel(mean(X, init=np.eye(8)), exact) < 1e-9


def test_mean_convergence_warning_and_options():
    X = well_conditioned(10, 5, 13)
    for metric in ("riemann", "logdet", "wasserstein"):
        with pytest.warns(ConvergenceWarning, match="did not converge in 1 iteration") as record:
            mean(X, metric, maxiter=1, tol=1e-15)
        assert record[0].filename == __file__  # the warning points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean(X, "riemann")
    with pytest.raises(ShapeError, match="maxiter"):
        mean(X, maxiter=0)
    with pytest.raises(ShapeError, match="tol"):
        mean(X, tol=-1.0)
    with pytest.raises(ShapeError, match="init has shape"):
        mean(X, init=np.eye(4))
    with pytest.raises(NotSPDError, match="init"):
        mean(X, init=-np.eye(5))


def test_mean_sample_weight_errors():
    X = well_conditioned(4, 3, 14)
    with pytest.raises(ShapeError, match="sample_weight has 3 entries"):
        mean(X, sample_weight=[1, 2, 3])
    with pytest.raises(ShapeError, match=r"sample_weight\[1\] is negative"):
        mean(X, sample_weight=[1, -2, 3, 4])
    with pytest.raises(ShapeError, match="sums to 0"):
        mean(X, sample_weight=np.zeros(4))


# --------------------------------------------------------------------------- tangent space


@pytest.mark.parametrize("metric", TANGENT_METRICS)
def test_tangent_space_parity(dataset, metric):
    X, _ = dataset
    tol = reference_tol(X, metric)
    ref = pr_mean.gmean(X, metric="riemann")
    T = tangent_space(X, ref, metric)
    assert T.shape == (len(X), X.shape[-1] * (X.shape[-1] + 1) // 2)
    T_pr = pr_ts.tangent_space(X, ref, metric=metric)
    assert rel(T, T_pr) < tol
    back = untangent_space(T, ref, metric)
    assert rel(back, pr_ts.untangent_space(T_pr, ref, metric=metric)) < tol
    assert rel(back, X) < 1e-9  # untangent(tangent(X)) = X


def test_logeuclid_maps_on_volt_scale_covariances(physionet_covs_volts):
    """EEG covariances in V^2 (eigenvalues 1e-12..5e-8): the log-Euclidean maps stay exact.

    pyRiemann's exponential map treats eigenvalues closer than 1e-12 as equal
    and loses 4 digits here; on the same data in uV^2 it is exact, and both
    maps are scale-equivariant, which gives the reference.
    """
    X = physionet_covs_volts[:30]
    ref = mean(X)
    T = tangent_space(X, ref, "logeuclid")
    s = 1e12
    T_pr_scaled = pr_ts.tangent_space(X * s, ref * s, metric="logeuclid") / s
    assert rel(T, T_pr_scaled) < TOL
    assert rel(T, pr_ts.tangent_space(X, ref, metric="logeuclid")) < TOL
    back = untangent_space(T, ref, "logeuclid")
    assert rel(back, pr_ts.untangent_space(T * s, ref * s, metric="logeuclid") / s) < TOL
    assert rel(back, X) < 1e-9
    assert rel(pr_ts.untangent_space(T, ref, metric="logeuclid"), X) > 1e-6  # pyRiemann's round trip breaks


def test_tangent_vector_layout():
    """pyRiemann's order: row-major upper triangle, off-diagonal entries times sqrt(2)."""
    X = well_conditioned(1, 3, 15)[0]
    L = logm(X)
    T = tangent_space(X, np.eye(3))
    r2 = np.sqrt(2)
    assert np.allclose(T, [L[0, 0], r2 * L[0, 1], r2 * L[0, 2], L[1, 1], r2 * L[1, 2], L[2, 2]], rtol=1e-13)
    # Euclidean norm of the vector = Riemannian distance to the reference
    assert abs(np.linalg.norm(T) - distance(X, np.eye(3))) < 1e-12


@pytest.mark.parametrize("metric", ["riemann", "logeuclid", {"mean": "logeuclid", "map": "riemann"}])
def test_tangent_space_transformer_parity(dataset, metric):
    X, Y = dataset
    w = np.linspace(1.0, 2.0, len(X))
    ours = TangentSpace(metric=metric).fit(X, sample_weight=w)
    ref = PrTangentSpace(metric=metric).fit(X, sample_weight=w)
    assert rel(ours.reference_, ref.reference_) < TOL
    assert rel(ours.transform(Y), ref.transform(Y)) < TOL
    T = ours.transform(X)
    assert rel(ours.inverse_transform(T), ref.inverse_transform(T)) < TOL
    assert rel(TangentSpace(metric=metric).fit_transform(X), PrTangentSpace(metric=metric).fit_transform(X)) < TOL
    upd = TangentSpace(metric=metric, tsupdate=True).fit(X)
    assert rel(upd.transform(Y), PrTangentSpace(metric=metric, tsupdate=True).fit(X).transform(Y)) < TOL


def test_tangent_space_fit_transform_reuses_the_last_karcher_pass():
    """fit_transform takes the log maps from the mean's last pass (first-order corrected for its last step)."""
    X = well_conditioned(30, 7, 18)
    w = np.linspace(1.0, 3.0, 30)
    ts = TangentSpace()
    T = ts.fit_transform(X, sample_weight=w)
    assert np.array_equal(ts.reference_, mean(X, sample_weight=w))
    assert rel(T, ts.transform(X)) < 1e-9
    exact = mean(X, sample_weight=w, tol=1e-13, maxiter=100)
    assert rel(T, tangent_space(X, exact)) < 1e-9
    assert np.linalg.norm(np.tensordot(w / w.sum(), _unupper(T), axes=1)) < 1e-9  # the gradient at the mean


# --------------------------------------------------------------------------- bad input


def bad_inputs():
    X = well_conditioned(5, 4, 16)
    nonsym = X.copy()
    nonsym[2, 0, 1] += 0.5
    nonpd = X.copy()
    nonpd[3] = -nonpd[3]
    nan = X.copy()
    nan[1, 2, 2] = np.nan
    inf = X.copy()
    inf[4, 0, 0] = np.inf
    return X, [
        (nonsym, NotSPDError, r"X\[2\] is not symmetric"),
        (nonpd, NotSPDError, r"X\[3\] is not positive definite"),
        (nan, NonFiniteError, r"NaN at index \(1, 2, 2\)"),
        (inf, NonFiniteError, r"Inf at index \(4, 0, 0\)"),
        (X[:, :, :3], ShapeError, "square"),
        (X[0, 0], ShapeError, "dimension|square"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_bad_input_is_rejected_with_its_index(case):
    X, cases = bad_inputs()
    bad, error, match = cases[case]
    for fn in (sqrtm, logm, lambda Z: pairwise_distance(Z), lambda Z: mean(Z), lambda Z: tangent_space(Z, X[0])):
        with pytest.raises(error, match=match):
            fn(bad)
    with pytest.raises(error):
        distance(bad, X[0])
    with pytest.raises(error):
        TangentSpace().fit(bad)


def test_bad_input_specifics():
    X = well_conditioned(5, 4, 17)
    with pytest.raises(UnknownNameError, match="'riemann', 'logeuclid'"):
        distance(X, X, metric="riemannian")
    with pytest.raises(UnknownNameError, match="choose one of"):
        pairwise_distance(X, metric="chol")
    with pytest.raises(UnknownNameError, match="'harmonic'"):
        mean(X, metric="ale")
    with pytest.raises(UnknownNameError, match="'wasserstein'"):
        tangent_space(X, X[0], metric="logdet")
    with pytest.raises(ShapeError, match="metric must be a string"):
        mean(X, metric=None)
    with pytest.raises(ShapeError, match="2 dimension.*expected 3"):
        pairwise_distance(X[0])
    with pytest.raises(ShapeError, match="Y holds 3 x 3"):
        pairwise_distance(X, well_conditioned(2, 3, 0))
    with pytest.raises(ShapeError, match="expected 3"):
        mean(X[0])
    with pytest.raises(ShapeError, match="exponent"):
        powm(X, "2")
    with pytest.raises(NotSPDError, match=r"X\[1\] is not symmetric"):
        expm(np.stack([np.eye(3), np.triu(np.ones((3, 3)))]))
    with pytest.raises(ShapeError, match="n \\(n \\+ 1\\) / 2"):
        untangent_space(np.ones((2, 7)), np.eye(3))
    with pytest.raises(ShapeError, match="ref has shape"):
        tangent_space(X, np.eye(3))
    with pytest.raises(NotSPDError, match="ref"):
        untangent_space(np.ones((2, 6)), -np.eye(3))
