"""SPD kernels of :mod:`neuroenc._kernels.spd` against plain numpy references."""

from __future__ import annotations

import numpy as np
import pytest

from neuroenc._kernels import spd

SIZES = [1, 2, 3, 5, 17]


def random_spd(n_matrices: int, n: int, seed: int = 0, cond: float | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if cond is None:
        A = rng.standard_normal((n_matrices, n, 2 * n + 1))
        return A @ A.transpose(0, 2, 1) / (2 * n + 1) + 0.1 * np.eye(n)
    Q, _ = np.linalg.qr(rng.standard_normal((n_matrices, n, n)))
    ev = np.logspace(0, -np.log10(cond), n)
    X = (Q * ev) @ Q.transpose(0, 2, 1)
    return 0.5 * (X + X.transpose(0, 2, 1))


def np_matfunc(X: np.ndarray, fn) -> np.ndarray:
    w, V = np.linalg.eigh(X)
    return (V * fn(w)[..., None, :]) @ np.swapaxes(V, -1, -2)


def rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


OPS = [
    (spd.OP_SQRT, np.sqrt, 1.0),
    (spd.OP_INVSQRT, lambda w: 1 / np.sqrt(w), 1.0),
    (spd.OP_LOG, np.log, 1.0),
    (spd.OP_EXP, np.exp, 1.0),
    (spd.OP_POW, lambda w: w**0.37, 0.37),
    (spd.OP_INV, lambda w: 1 / w, 1.0),
]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("op,fn,p", OPS)
def test_matfunc_matches_numpy(n, op, fn, p):
    X = random_spd(7, n, seed=n)
    assert rel(spd.matfunc(X, op, p), np_matfunc(X, fn)) < 1e-12


@pytest.mark.parametrize("n", [4, 64])
def test_matfunc_groups_threads_and_upper_triangles(n):
    # 70 matrices: two full groups of the lockstep QL and a ragged one
    X = random_spd(70, n, seed=20 + n)
    expected = np_matfunc(X, np.log)
    got = spd.matfunc(X, spd.OP_LOG, n_jobs=1)
    assert rel(got, expected) < 1e-12
    assert np.array_equal(spd.matfunc(X, spd.OP_LOG, n_jobs=2), got)
    rows, cols = np.triu_indices(n)
    weights = np.where(rows == cols, 1.0, np.sqrt(2.0))
    assert np.array_equal(spd.matfunc_upper(X, spd.OP_LOG, n_jobs=2), got[:, rows, cols] * weights)
    F = np.linalg.inv(np.linalg.cholesky(X.mean(0)))
    S = random_spd(1, n, seed=3)[0]
    W = F @ X @ F.T
    expected = (0.5 * (W + W.transpose(0, 2, 1)) - F @ S @ F.T)[:, rows, cols] * weights
    assert rel(spd.congruence_upper(X, F, F @ S @ F.T, n_jobs=2), expected) < 1e-12


@pytest.mark.parametrize("i", range(11))
def test_matfunc_special_matrices(i):
    """Deflation, splits, repeated eigenvalues and extreme scales in the QL with eigenvectors."""
    A = special_symmetric_matrices()[i]
    if i == 1:  # the zero matrix: exp only
        assert np.array_equal(spd.matfunc(A[None], spd.OP_EXP)[0], np.eye(4))
        return
    # exp of these (indefinite, up to 1e200) matrices overflows: exp of the matrix at unit scale
    B = A / np.abs(A).max()
    assert rel(spd.matfunc(B[None], spd.OP_EXP)[0], np_matfunc(B, np.exp)) < 1e-12
    if np.linalg.eigvalsh(A)[0] > 0:
        ref = np_matfunc(A, np.log)  # 0 for the identity
        assert np.abs(spd.matfunc(A[None], spd.OP_LOG)[0] - ref).max() <= 1e-12 * max(1.0, np.abs(ref).max())


def _mp_log(X: np.ndarray) -> np.ndarray:
    """Matrix logarithm in 60-digit arithmetic (mpmath)."""
    import mpmath

    with mpmath.workdps(60):
        E, Q = mpmath.eigsy(mpmath.matrix(X.tolist()))
        L = Q * mpmath.diag([mpmath.log(e) for e in E]) * Q.T
        return np.array(L.tolist(), dtype=float)


def test_matfunc_accuracy_against_extended_precision():
    """Up to the condition limit, the QL with eigenvectors is as accurate as LAPACK; above it, LAPACK's own."""
    for cond in (1e3, 1e5):
        X = random_spd(4, 6, seed=21, cond=cond)
        exact = np.stack([_mp_log(x) for x in X])
        assert rel(spd.matfunc(X, spd.OP_LOG), exact) <= 4 * rel(np_matfunc(X, np.log), exact) + 1e-14
    # above the limit, the divide and conquer of numpy's eigh on the same tridiagonal form: numpy's
    # eigenvalues, whose rounding decides the result (and pyRiemann's) at these condition numbers
    for n in (6, 64):
        X = random_spd(5, n, seed=1, cond=1e14)
        assert rel(spd.matfunc(X, spd.OP_LOG), np_matfunc(X, np.log)) < 1e-13
        assert rel(spd.matfunc(X, spd.OP_POW, -1.5), np_matfunc(X, lambda w: w**-1.5)) < 1e-13


def test_matfunc_unconverged_problems_fall_back_to_lapack(monkeypatch):
    X = random_spd(40, 5, seed=22)
    expected = spd.matfunc(X, spd.OP_SQRT)
    real = spd.ql_vectors_kernel

    def with_failure(D, E, lam, QT, cond_limit, failed, iwork, fwork):
        real(D, E, lam, QT, cond_limit, failed, iwork, fwork)
        failed[3] = 1  # problem 3 of each group: matrices 3 and 35
        QT[3 * 6 : 4 * 6] = np.nan  # garbage that must not survive

    monkeypatch.setattr(spd, "ql_vectors_kernel", with_failure)
    assert rel(spd.matfunc(X, spd.OP_SQRT), expected) < 1e-12
    w = np.random.default_rng(23).random(40)
    assert rel(spd.weighted_matfunc_sum(X, w, spd.OP_SQRT), np.tensordot(w, expected, axes=1)) < 1e-12


def test_matfunc_congruences():
    rng = np.random.default_rng(2)
    F = rng.standard_normal((6, 6))
    G = rng.standard_normal((6, 6))
    Y = random_spd(4, 6, seed=3)
    expected = G @ np_matfunc(F @ Y @ F.T, np.log) @ G.T
    assert rel(spd.matfunc(Y, spd.OP_LOG, F=F, G=G), expected) < 1e-11
    assert rel(spd.congruence_matfunc(Y, F, spd.OP_SQRT), np_matfunc(F @ Y @ F.T, np.sqrt)) < 1e-12


@pytest.mark.parametrize("n", [1, 2, 9])
def test_weighted_matfunc_sum(n):
    X = random_spd(23, n, seed=4)
    w = np.random.default_rng(5).random(23)
    w[3] = 0.0
    F = np.linalg.inv(np.linalg.cholesky(X.mean(0)))
    expected = np.tensordot(w, np_matfunc(F @ X @ F.T, np.log), axes=1)
    assert rel(spd.weighted_matfunc_sum(X, w, spd.OP_LOG, F=F, n_jobs=2), expected) < 1e-12
    assert rel(spd.weighted_matfunc_sum(X, w, spd.OP_SQRT), np.tensordot(w, np_matfunc(X, np.sqrt), axes=1)) < 1e-12


@pytest.mark.parametrize("n", SIZES)
def test_spd_inv(n):
    X = random_spd(6, n, seed=6)
    inv = spd.spd_inv(X, n_jobs=2)
    assert rel(inv, np.linalg.inv(X)) < 1e-12
    assert np.array_equal(inv, inv.transpose(0, 2, 1))
    Xs = random_spd(3, n, seed=7, cond=1e10)
    assert rel(spd.spd_inv(Xs) @ Xs, np.broadcast_to(np.eye(n), Xs.shape)) < 1e-4


def special_symmetric_matrices() -> list[np.ndarray]:
    """Matrices that exercise deflation, splitting and scaling in the tridiagonal QL."""
    rng = np.random.default_rng(8)
    mats = [
        np.eye(6),
        np.zeros((4, 4)),
        np.diag([3.0, -1.0, 2.0, 2.0, 1e-9]),  # already tridiagonal, e = 0 everywhere
        np.diag(np.arange(1.0, 8.0)) + np.diag(np.ones(6), 1) + np.diag(np.ones(6), -1),
    ]
    # Wilkinson W21+: pairs of eigenvalues agreeing to many digits
    w = np.abs(np.arange(-10, 11)).astype(float)
    mats.append(np.diag(w) + np.diag(np.ones(20), 1) + np.diag(np.ones(20), -1))
    # a split in the middle of a tridiagonal matrix
    T = np.diag(rng.random(8)) + np.diag(np.r_[rng.random(3), 0.0, rng.random(3)], 1)
    mats.append(T + np.triu(T, 1).T)
    B = rng.standard_normal((7, 7))
    mats.append(B + B.T)  # indefinite
    mats.append(1e200 * (B @ B.T))  # squares would overflow without scaling
    mats.append(1e-200 * (B @ B.T))
    mats.append(random_spd(1, 12, seed=9, cond=1e14)[0])
    mats.append(np.ones((5, 5)))  # rank one
    return mats


@pytest.mark.parametrize("n", [1, 2, 3, 5, 22, 64])
def test_eigvalsh_matches_lapack(n):
    # 37 problems: more than one group of the interleaved QL, with a ragged last group
    X = random_spd(37, n, seed=n)
    ev = spd.eigvalsh(X)
    ref = np.linalg.eigvalsh(X)
    assert np.max(np.abs(ev - ref) / ref.max(axis=1, keepdims=True)) < 1e-13
    assert np.array_equal(spd.eigvalsh(X, n_jobs=2), ev)


@pytest.mark.parametrize("i", range(len(special_symmetric_matrices())))
def test_eigvalsh_special_matrices(i):
    A = special_symmetric_matrices()[i]
    ref = np.linalg.eigvalsh(A)
    ev = spd.eigvalsh(A[None])[0]
    scale = max(np.abs(ref).max(), np.finfo(float).tiny)
    assert np.max(np.abs(ev - ref)) <= 1e-13 * scale


def test_eigvalsh_batch_shapes_and_upper_triangle():
    X = random_spd(6, 4, seed=10).reshape(2, 3, 4, 4)
    assert spd.eigvalsh(X).shape == (2, 3, 4)
    # only the upper triangle is read
    Y = np.triu(X)
    assert np.allclose(spd.eigvalsh(Y), np.linalg.eigvalsh(X), rtol=0, atol=1e-13 * X.max())


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_pair_spectral_sum(n):
    X = random_spd(5, n, seed=11)
    Y = random_spd(6, n, seed=12)
    F = np.linalg.inv(np.linalg.cholesky(X))
    fi = np.array([0, 0, 4, 2, 1, 3, 3, 0, 1, 2, 4, 4, 0, 1, 2, 3, 0, 1, 2])
    yi = np.array([5, 0, 1, 2, 3, 4, 0, 0, 5, 5, 2, 3, 1, 1, 0, 3, 4, 4, 4])
    W = F[fi] @ Y[yi] @ F[fi].transpose(0, 2, 1)
    lam = np.linalg.eigvalsh(W)
    got = spd.pair_spectral_sum(F, Y, fi, yi, spd.SUM_LOG2, n_jobs=2)
    assert rel(got, (np.log(lam) ** 2).sum(-1)) < 1e-12
    got = spd.pair_spectral_sum(F, Y, fi, yi, spd.SUM_SQRT)
    assert rel(got, np.sqrt(lam).sum(-1)) < 1e-12


def test_pair_spectral_sum_identical_matrices_is_zero():
    X = random_spd(3, 8, seed=13)
    F = np.linalg.inv(np.linalg.cholesky(X))
    idx = np.arange(3)
    assert np.max(spd.pair_spectral_sum(F, X, idx, idx, spd.SUM_LOG2)) < 1e-25


@pytest.mark.parametrize("n", [1, 2, 6])
def test_pair_spectral_sum_logdet(n):
    X = random_spd(4, n, seed=14)
    Y = random_spd(3, n, seed=15, cond=1e6)
    F = np.linalg.inv(np.linalg.cholesky(Y))
    fi = np.array([0, 1, 2, 2, 0])
    yi = np.array([2, 1, 0, 3, 3])
    A, B = X[yi], Y[fi]
    expected = np.linalg.slogdet((A + B) / 2)[1] - 0.5 * (np.linalg.slogdet(A)[1] + np.linalg.slogdet(B)[1])
    assert rel(spd.pair_spectral_sum(F, X, fi, yi, spd.SUM_LOGDET), expected) < 1e-10


def test_empty_batches():
    X = np.empty((0, 3, 3))
    assert spd.matfunc(X, spd.OP_LOG).shape == (0, 3, 3)
    assert spd.eigvalsh(X).shape == (0, 3)
    idx = np.empty(0, dtype=np.int64)
    assert spd.pair_spectral_sum(random_spd(1, 3), random_spd(1, 3), idx, idx, spd.SUM_LOG2).shape == (0,)


def test_unconverged_problems_fall_back_to_lapack(monkeypatch):
    """A group the QL does not converge on is recomputed by numpy in the wrappers."""
    X = random_spd(4, 5, seed=16)
    F = np.linalg.inv(np.linalg.cholesky(X))
    fi = np.array([0, 1, 2, 3])
    yi = np.array([1, 2, 3, 0])
    expected = {kind: spd.pair_spectral_sum(F, X, fi, yi, kind) for kind in (0, 1, 2)}
    ev_expected = spd.eigvalsh(X)
    real = spd.tridiagonal_eigvals_kernel

    def with_failure(D, E2, info):
        real(D, E2, info)
        info[0] = 1
        D[0] = -1.0  # garbage that must not survive

    monkeypatch.setattr(spd, "tridiagonal_eigvals_kernel", with_failure)
    for kind in (0, 1, 2):
        assert rel(spd.pair_spectral_sum(F, X, fi, yi, kind), expected[kind]) < 1e-12
    assert rel(spd.eigvalsh(X), ev_expected) < 1e-12
