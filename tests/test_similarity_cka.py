"""CKA: closed-form cases, independent O(n^2) HSIC formulas, the negative-HSIC guard, input checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from neuroenc.errors import DataError, NonFiniteError, ShapeError, UnknownNameError
from neuroenc.similarity.kernel_alignment import _centred, _linear_cka_features, centered_gram, cka, gram


# ----------------------------------------------------------------------
# references written from the papers, O(n^2) with explicit centring matrices
def hsic_biased(K: np.ndarray, L: np.ndarray) -> float:
    """Gretton et al. 2005: tr(K H L H) / (n - 1)^2."""
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return np.trace(K @ H @ L @ H) / (n - 1) ** 2


def hsic_unbiased(K: np.ndarray, L: np.ndarray) -> float:
    """Song et al. 2012, eq. (5): the unbiased estimator HSIC_1."""
    n = K.shape[0]
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0)
    np.fill_diagonal(Lt, 0)
    one = np.ones(n)
    value = np.trace(Kt @ Lt) + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
    value -= 2.0 / (n - 2) * one @ Kt @ Lt @ one
    return value / (n * (n - 3))


def cka_reference(K: np.ndarray, L: np.ndarray, debiased: bool = False) -> float:
    h = hsic_unbiased if debiased else hsic_biased
    return h(K, L) / np.sqrt(h(K, K) * h(L, L))


def rbf_reference(X: np.ndarray, sigma: float) -> np.ndarray:
    """Kornblith et al.'s bandwidth: sigma times the median distance over all n^2 ordered pairs."""
    D = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    return np.exp(-D / (2 * sigma**2 * np.median(D)))


def pair(n: int, p: int, q: int, seed: int = 0, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 3.0
    Y = X @ rng.standard_normal((p, q)) + noise * rng.standard_normal((n, q)) - 2.0
    return X, Y


SHAPES = [(60, 5, 7), (12, 40, 30), (30, 30, 3), (200, 8, 8)]


# ----------------------------------------------------------------------
@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_linear_matches_hsic_formulas(shape, debiased):
    X, Y = pair(*shape)
    expected = cka_reference(X @ X.T, Y @ Y.T, debiased)
    assert cka(X, Y, debiased=debiased) == pytest.approx(expected, rel=1e-10)
    assert cka(Y, X, debiased=debiased) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("sigma", [0.4, 0.8, 2.0])
def test_rbf_matches_reference(sigma, debiased):
    X, Y = pair(40, 6, 9, seed=3)
    expected = cka_reference(rbf_reference(X, sigma), rbf_reference(Y, sigma), debiased)
    assert cka(X, Y, kernel="rbf", sigma=sigma, debiased=debiased) == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(gram(X, "rbf", sigma=sigma), rbf_reference(X, sigma), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("debiased", [False, True])
def test_feature_route_equals_gram_route(debiased):
    X, Y = pair(300, 4, 6, seed=5)  # many stimuli: cka() takes the feature route
    from_features = _linear_cka_features(_centred(X), _centred(Y), debiased)
    Kx, Ky = centered_gram(X, debiased=debiased), centered_gram(Y, debiased=debiased)
    from_grams = np.vdot(Kx, Ky) / (np.linalg.norm(Kx) * np.linalg.norm(Ky))
    assert from_features == pytest.approx(from_grams, rel=1e-11)
    assert cka(X, Y, debiased=debiased) == pytest.approx(from_grams, rel=1e-11)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("debiased", [False, True])
def test_closed_form_invariances(kernel, debiased):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 12))
    Q = ortho_group.rvs(12, random_state=2)
    for Y in (X, X @ Q, 3.7 * X, X + 5.0, 0.1 * X @ Q - 2.0):
        assert cka(X, Y, kernel=kernel, debiased=debiased) == pytest.approx(1.0, abs=1e-12)
    # An anisotropic rescaling of units changes linear CKA.
    assert cka(X, X * np.linspace(0.1, 3, 12), kernel=kernel, debiased=debiased) < 0.99


def test_shuffled_stimuli_lose_similarity():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((400, 20))
    Y = X @ rng.standard_normal((20, 30))
    shuffled = Y[rng.permutation(400)]
    assert cka(X, Y) > 0.7
    # Biased CKA of unrelated data is inflated (about p q / n-scale terms); debiased is near 0.
    assert cka(X, shuffled) < 0.2
    assert abs(cka(X, shuffled, debiased=True)) < 0.02
    assert cka(X, Y, debiased=True) > 0.7


def test_values_in_range_and_symmetric():
    for seed in range(5):
        X, Y = pair(25, 30, 4, seed=seed, noise=5.0)
        for debiased, low in ((False, 0.0), (True, -1.0)):
            value = cka(X, Y, debiased=debiased)
            assert low <= value <= 1.0
            assert value == pytest.approx(cka(Y, X, debiased=debiased), rel=1e-12)


# ----------------------------------------------------------------------
# the negative-HSIC guard
def kornblith_feature_space_debiased(X: np.ndarray, Y: np.ndarray) -> float:
    """Term-by-term evaluation of the unbiased HSIC from feature products, as common code does."""
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    n = X.shape[0]
    sx, sy = (X * X).sum(1), (Y * Y).sum(1)

    def unbiased(frob, a, b):
        return frob - n / (n - 2.0) * a @ b + a.sum() * b.sum() / ((n - 1) * (n - 2))

    xy = unbiased(np.linalg.norm(X.T @ Y) ** 2, sx, sy)
    xx = unbiased(np.linalg.norm(X.T @ X) ** 2, sx, sx)
    yy = unbiased(np.linalg.norm(Y.T @ Y) ** 2, sy, sy)
    with np.errstate(invalid="ignore", divide="ignore"):
        return xy / np.sqrt(xx * yy)


@pytest.mark.parametrize("n", [6, 10, 37, 64])
def test_debiased_guard_on_one_hot_codes(n):
    # A one-hot ("lookup table") code has a U-centred Gram matrix that is
    # exactly zero: its unbiased self-HSIC is 0 and rounding decides the sign
    # in a term-by-term evaluation (NaN, inf or a meaningless value there).
    rng = np.random.default_rng(n)
    X, Y = np.eye(n), rng.standard_normal((n, 3))
    naive = kornblith_feature_space_debiased(X, Y)
    assert not np.isfinite(naive) or abs(naive) > 1e-12 or naive == 0  # fragile, whatever it gives
    assert cka(X, Y, debiased=True) == 0.0
    assert cka(Y, X, debiased=True) == 0.0
    assert np.isfinite(cka(X, Y)) and cka(X, Y) > 0  # the biased HSIC is positive for this code


def test_debiased_never_nan_on_degenerate_inputs():
    rng = np.random.default_rng(0)
    cases = [
        (np.eye(4), rng.standard_normal((4, 2))),
        (np.ones((8, 3)) * 1e6, rng.standard_normal((8, 3))),  # constant
        (rng.standard_normal((5, 1)) * 1e-9 + 1e9, rng.standard_normal((5, 2))),  # tiny variance, big offset
        (np.repeat(rng.standard_normal((1, 4)), 6, 0) + np.eye(6, 4) * 1e-3, rng.standard_normal((6, 4))),
    ]
    for X, Y in cases:
        for debiased in (False, True):
            value = cka(X.astype(np.float32), Y, debiased=debiased)
            assert np.isfinite(value) and -1.0 <= value <= 1.0


def test_constant_representation_is_zero():
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((20, 5))
    const = np.full((20, 3), 3.3)
    for debiased in (False, True):
        assert cka(const, Y, debiased=debiased) == 0.0
        assert cka(Y, const, debiased=debiased) == 0.0


# ----------------------------------------------------------------------
def test_gram_helpers():
    X, _ = pair(15, 4, 4)
    np.testing.assert_allclose(gram(X), X @ X.T)
    Kc = centered_gram(X)
    np.testing.assert_allclose(Kc.sum(0), 0, atol=1e-10)
    np.testing.assert_allclose(Kc, Kc.T)
    Ku = centered_gram(X, debiased=True)
    assert np.all(np.diag(Ku) == 0)
    # U-centred inner product equals Song et al.'s HSIC_1 times n (n - 3).
    Y = X @ np.random.default_rng(0).standard_normal((4, 3))
    Lu = centered_gram(Y, debiased=True)
    assert np.vdot(Ku, Lu) / (15 * 12) == pytest.approx(hsic_unbiased(X @ X.T, Y @ Y.T), rel=1e-10)


def test_accepts_braindata_tensors_and_higher_dims():
    import neuroenc

    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 3, 4))
    Y = rng.standard_normal((10, 5))
    flat = cka(X.reshape(10, -1), Y)
    assert cka(X, Y) == pytest.approx(flat, rel=1e-12)
    assert cka(X.astype(np.float32), Y) == pytest.approx(flat, rel=1e-5)
    bd = neuroenc.BrainData(X, [f"c{i}" for i in range(10)], "eeg", sfreq=100.0)
    assert cka(bd, Y) == pytest.approx(flat, rel=1e-12)
    torch = pytest.importorskip("torch")
    assert cka(torch.tensor(X, requires_grad=True), torch.tensor(Y)) == pytest.approx(flat, rel=1e-12)


def test_real_haxby_regions(haxby_dir, data_dir):
    from neuroenc.datasets import load_haxby

    bd = load_haxby("volumes", data_dir=data_dir)
    bd = bd.select(condition=sorted(set(bd.obs["condition"]) - {"rest"}))
    means = bd.average(by="condition", within="run")  # 96 (run, category) patterns
    data = means.data.astype(np.float64)
    X, Y = data[:, :265], data[:, 265:]  # two halves of the slice
    # BOLD values have means far above their variation: the reference centres
    # the units first (CKA is translation-invariant) to keep its own precision.
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    for debiased in (False, True):
        expected = cka_reference(Xc @ Xc.T, Yc @ Yc.T, debiased)
        assert cka(X, Y, debiased=debiased) == pytest.approx(expected, rel=1e-10)
    expected = cka_reference(rbf_reference(X, 0.8), rbf_reference(Y, 0.8))
    assert cka(X, Y, kernel="rbf") == pytest.approx(expected, rel=1e-10)
    # BrainData input = its data; shuffling the stimuli of one half removes most similarity.
    full = cka(means, means.data[:, ::-1])
    assert full == pytest.approx(1.0)
    shuffled = Y[np.random.default_rng(0).permutation(96)]
    assert cka(X, shuffled, debiased=True) < cka(X, Y, debiased=True) - 0.2


# ----------------------------------------------------------------------
# bad input: clear errors before any work
def test_mismatched_stimuli_names_both_shapes():
    with pytest.raises(ShapeError, match=r"\(10, 3\).*\(9, 4\)"):
        cka(np.ones((10, 3)), np.ones((9, 4)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite(bad):
    X = np.random.default_rng(0).standard_normal((10, 3))
    X[4, 1] = bad
    with pytest.raises(NonFiniteError, match="index"):
        cka(X, np.ones((10, 2)))
    with pytest.raises(NonFiniteError):
        cka(np.ones((10, 2)), X)


def test_bad_arguments():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
    with pytest.raises(UnknownNameError, match="linear"):
        cka(X, Y, kernel="poly")
    with pytest.raises(ShapeError, match="sigma"):
        cka(X, Y, kernel="rbf", sigma=-1)
    with pytest.raises(ShapeError, match="at least 4"):
        cka(X[:3], Y[:3], debiased=True)
    with pytest.raises(ShapeError, match="reshape"):
        cka(X[:, 0], Y)
    with pytest.raises(ShapeError, match="complex"):
        cka(X + 1j, Y)
    with pytest.raises(ShapeError, match="no units"):
        cka(np.ones((10, 0)), Y)
    dup = np.repeat(X[:1], 10, 0)
    dup[0] += 1
    with pytest.raises(DataError, match="median"):
        cka(dup, Y, kernel="rbf")


def test_activations_container_needs_a_layer():
    class FakeActivations:
        layer_names = ["conv1", "fc"]

        def flattened(self, name):
            return np.ones((4, 2))

    with pytest.raises(ShapeError, match="conv1"):
        cka(FakeActivations(), np.ones((4, 2)))
