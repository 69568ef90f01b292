"""RDM comparison: parity with rsatoolbox 0.3.2 on the 92-image RDMs and random data, NaN and tie policies, errors."""

from __future__ import annotations

import numpy as np
import pytest
from rsatoolbox.rdm import RDMs as RsaRDMs
from rsatoolbox.rdm import compare as rsa_compare
from rsatoolbox.rdm.compare import _get_v
from scipy.io import loadmat
from scipy.spatial.distance import pdist

from neuroenc.errors import DataError, LabelError, NonFiniteError, NotSPDError, ShapeError, UnknownNameError
from neuroenc.rsa import RDMs
from neuroenc.rsa.comparisons import METHODS, canonical_method, compare, compare_vectors, product_features
from neuroenc.rsa.rdms import to_vectors

#: neuroenc name -> rsatoolbox name
RSA_NAMES = {
    "cosine": "cosine",
    "pearson": "corr",
    "spearman": "spearman",
    "rho_a": "rho-a",
    "kendall_tau_a": "tau-a",
    "kendall_tau_b": "tau-b",
    "cosine_cov": "cosine_cov",
    "pearson_cov": "corr_cov",
}
RTOL = 1e-8


def assert_parity(ours, ref, rtol=RTOL):
    """Relative difference below ``rtol`` (NaN in the same places)."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=rtol, atol=1e-14)


def rsa(x, y, method, **kw):
    return rsa_compare(RsaRDMs(np.atleast_2d(x)), RsaRDMs(np.atleast_2d(y)), method=RSA_NAMES[method], **kw)


@pytest.fixture(scope="module")
def rsa92(rsa92_dir):
    brain = loadmat(rsa92_dir / "92_brainRDMs.mat")["RDMs"]
    behav = loadmat(rsa92_dir / "92_behavRDMs.mat")["rdms_behav_92"][0]
    models = loadmat(rsa92_dir / "92_modelRDMs.mat")["Models"][0]
    brain_m = np.stack([brain[0, s, k]["RDM"] for s in range(4) for k in range(2)]).astype(np.float64)
    return {
        "brain": to_vectors(brain_m),
        "behav": to_vectors(np.stack([b["RDM"] for b in behav]).astype(np.float64)),
        "models": to_vectors(np.stack([np.asarray(m["RDM"], dtype=np.float64) for m in models])),
        "model_names": [str(m["name"][0]) for m in models],
    }


def random_vectors(n_rdms, n_cond, seed, tied=0):
    rng = np.random.default_rng(seed)
    out = np.stack([pdist(rng.standard_normal((n_cond, 4))) for _ in range(n_rdms)])
    for k in range(tied):  # categorical models: few levels, many ties (never constant)
        labels = np.r_[0, 0, 1, rng.integers(0, 3, n_cond - 3)]  # equal and unequal pairs
        out[k] = (labels[:, None] != labels[None, :])[np.triu_indices(n_cond, 1)] * (1.0 + k)
    return out


# ----------------------------------------------------------------------
# parity with rsatoolbox
@pytest.mark.parametrize("method", METHODS)
def test_parity_on_92_image_rdms(rsa92, method):
    """Brain (4 subjects x 2 sessions) and behavioural RDMs against the 8 models (two binary: ties)."""
    models = rsa92["models"]
    assert len(np.unique(models[0])) == 2  # animacy is binary
    for data in (rsa92["brain"], rsa92["behav"]):
        assert_parity(compare(data, models, method), rsa(data, models, method))
    assert_parity(compare(models, models, method), rsa(models, models, method))


def test_parity_accepts_containers_and_rsatoolbox_objects(rsa92):
    data = RDMs(rsa92["brain"], metadata={"subject": np.repeat(["BE", "KO", "SN", "TI"], 2)})
    models = RsaRDMs(rsa92["models"])
    out = compare(data, models, "spearman")
    assert out.shape == (8, 8)
    assert_parity(out, rsa(rsa92["brain"], rsa92["models"], "spearman"))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_cond", [3, 4, 17])
def test_parity_on_random_rdms(method, n_cond):
    a = random_vectors(5, n_cond, seed=n_cond, tied=2)
    b = random_vectors(4, n_cond, seed=n_cond + 100, tied=1)
    assert_parity(compare(a, b, method), rsa(a, b, method))


@pytest.mark.parametrize("method", METHODS)
def test_parity_with_shared_nan_positions(method):
    """NaN in the same pairs of every RDM (rsatoolbox's case, e.g. repeated conditions in a bootstrap)."""
    a = random_vectors(4, 15, seed=1, tied=1)
    b = random_vectors(3, 15, seed=2, tied=1)
    missing = np.random.default_rng(3).choice(a.shape[1], 12, replace=False)
    a[:, missing] = np.nan
    b[:, missing] = np.nan
    assert_parity(compare(a, b, method), rsa(a, b, method))


@pytest.mark.parametrize("method", ["cosine_cov", "pearson_cov"])
def test_whitened_parity_with_sigma_k_variances(rsa92, method):
    sigma = np.random.default_rng(4).uniform(0.5, 2.0, 92)
    a, b = rsa92["brain"][:3], rsa92["models"]
    assert_parity(compare(a, b, method, sigma_k=sigma), rsa(a, b, method, sigma_k=sigma))
    a = random_vectors(3, 12, seed=5)
    b = random_vectors(2, 12, seed=6)
    a[:, [2, 9]] = b[:, [2, 9]] = np.nan
    sigma = sigma[:12]
    assert_parity(compare(a, b, method, sigma_k=sigma), rsa(a, b, method, sigma_k=sigma))


def exact_whitened(a, b, sigma, centred):
    """``a' V^-1 b`` normalised, with V from rsatoolbox's ``_get_v`` restricted to the defined pairs."""
    keep = ~np.isnan(a[0])
    V = _get_v(len(sigma), sigma).toarray()[np.ix_(keep, keep)]
    x, y = a[:, keep], b[:, keep]
    if centred:
        x = x - x.mean(1, keepdims=True)
        y = y - y.mean(1, keepdims=True)
    vx, vy = np.linalg.solve(V, x.T).T, np.linalg.solve(V, y.T).T
    return (x @ vy.T) / np.sqrt(np.sum(x * vx, 1))[:, None] / np.sqrt(np.sum(y * vy, 1))[None, :]


@pytest.mark.parametrize("method", ["cosine_cov", "pearson_cov"])
@pytest.mark.parametrize("with_nan", [False, True])
def test_whitened_full_sigma_k_is_exact(method, with_nan):
    """Full ``sigma_k``: exact ``a' V^-1 b`` (rsatoolbox solves it by conjugate gradients, to about 1e-5)."""
    rng = np.random.default_rng(7)
    n_cond = 10
    a = random_vectors(3, n_cond, seed=8)
    b = random_vectors(2, n_cond, seed=9, tied=1)
    if with_nan:
        a[:, [1, 30]] = b[:, [1, 30]] = np.nan
    X = rng.standard_normal((n_cond, n_cond))
    sigma = X @ X.T / n_cond + np.eye(n_cond)
    ours = compare(a, b, method, sigma_k=sigma)
    assert_parity(ours, exact_whitened(a, b, sigma, method == "pearson_cov"))
    ref = rsa(a, b, method, sigma_k=sigma)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_whitened_identity_sigma_k_matches_default(rsa92):
    a, b = rsa92["brain"][:2], rsa92["models"][:3]
    for method in ("cosine_cov", "pearson_cov"):
        np.testing.assert_allclose(compare(a, b, method, sigma_k=np.eye(92)), compare(a, b, method), atol=1e-12)
        np.testing.assert_allclose(compare(a, b, method, sigma_k=np.ones(92)), compare(a, b, method), atol=1e-12)


# ----------------------------------------------------------------------
# NaN handling and batching
def per_pair_reference(a, b, method):
    """rsatoolbox on each pair alone, restricted to the pairs defined in both (NaN if none)."""
    out = np.empty((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            drop = np.isnan(x) | np.isnan(y)
            out[i, j] = (
                np.nan if drop.all() else rsa(np.where(drop, np.nan, x), np.where(drop, np.nan, y), method)[0, 0]
            )
    return out


@pytest.mark.parametrize("method", METHODS)
def test_differing_nan_positions_use_each_comparisons_common_pairs(method):
    """rsatoolbox raises here; each comparison keeps the pairs defined in both of its RDMs."""
    rng = np.random.default_rng(10)
    a = random_vectors(3, 12, seed=11, tied=1)
    b = random_vectors(3, 12, seed=12)
    a[0, rng.choice(66, 10, replace=False)] = np.nan
    a[1, :5] = np.nan
    b[2, rng.choice(66, 20, replace=False)] = np.nan
    b[1, :] = np.nan  # nothing in common with anything
    with pytest.raises(ValueError):
        rsa(a, b, method)
    ours = compare(a, b, method)
    assert np.all(np.isnan(ours[:, 1]))
    assert_parity(ours, per_pair_reference(a, b, method))


@pytest.mark.parametrize("method", METHODS)
def test_compare_vectors_batches_bootstrap_samples(method):
    """(n_boot, n_a, n_pairs) x (n_boot, n_b, n_pairs) with one NaN pattern per sample = a loop of compare."""
    rng = np.random.default_rng(13)
    n_cond = 9
    base_a = random_vectors(3, n_cond, seed=14, tied=1)
    base_b = random_vectors(2, n_cond, seed=15)
    from neuroenc.rsa.rdms import to_matrices

    samples_a, samples_b = [], []
    for _ in range(4):  # condition bootstrap: pairs of a repeated condition are missing
        idx = np.sort(rng.integers(0, n_cond, n_cond))
        same = (idx[:, None] == idx[None, :]) & ~np.eye(n_cond, dtype=bool)
        samples_a.append(to_vectors(np.where(same, np.nan, to_matrices(base_a)[:, idx][:, :, idx])))
        samples_b.append(to_vectors(np.where(same, np.nan, to_matrices(base_b)[:, idx][:, :, idx])))
    A, B = np.stack(samples_a), np.stack(samples_b)
    batched = compare_vectors(A, B, method)
    assert batched.shape == (4, 3, 2)
    for t in range(4):
        assert_parity(batched[t], rsa(A[t], B[t], method))
    # broadcasting: one set of models against every sample
    assert compare_vectors(A[0], B, method).shape == (4, 3, 2)
    assert_parity(compare_vectors(A[0], B, method)[0], compare(A[0], B[0], method))


@pytest.mark.parametrize("method", ["cosine", "pearson", "spearman", "rho_a", "cosine_cov", "pearson_cov"])
def test_product_features_give_the_similarities(method):
    a = random_vectors(4, 10, seed=16, tied=1)
    b = random_vectors(3, 10, seed=17)
    fa, fb = product_features(a, method), product_features(b, method)
    np.testing.assert_allclose(fa @ fb.T, compare(a, b, method), atol=1e-13)
    # permuting conditions permutes the features (sigma_k None)
    from neuroenc.rsa.rdms import to_matrices

    perm = np.random.default_rng(18).permutation(10)
    b_perm = to_vectors(to_matrices(b)[:, perm][:, :, perm])
    np.testing.assert_allclose(fa @ product_features(b_perm, method).T, compare(a, b_perm, method), atol=1e-13)


# ----------------------------------------------------------------------
# constant RDMs, ties, tiny RDMs
def test_constant_rdm_policy_matches_rsatoolbox():
    """Zero variance: 0 for every method (rsatoolbox's cosine of a zero vector) except tau-b (NaN, as scipy)."""
    const = np.full((1, 10), 1.0)
    zero = np.zeros((1, 10))
    b = random_vectors(2, 5, seed=19)
    for method in METHODS:
        ours = compare(const, b, method)
        assert_parity(ours, rsa(const, b, method))
        if method == "kendall_tau_b":
            assert np.all(np.isnan(ours))
        elif method != "cosine" and method != "cosine_cov":
            assert np.all(ours == 0.0)
    assert np.all(compare(zero, b, "cosine") == 0.0)
    assert_parity(compare(zero, b, "cosine"), rsa(zero, b, "cosine"))
    # a constant that the mean cannot reproduce exactly stays exactly 0
    odd = np.full((1, 10), 0.1 + 0.2)
    for method in ("pearson", "spearman", "rho_a", "pearson_cov"):
        assert np.all(compare(odd, b, method) == 0.0)


def test_constant_rdm_among_others_matches_rsatoolbox_row_by_row():
    """rsatoolbox's cosine misplaces similarities when a set mixes zero-norm and other vectors
    (``np.putmask`` repeats its values by flat position); one RDM per call it is right, and so are we."""
    a = random_vectors(3, 6, seed=25)
    a[1] = 4.0
    b = random_vectors(2, 6, seed=26)
    for method in ("pearson", "spearman", "pearson_cov"):
        ours = compare(a, b, method)
        assert_parity(ours, np.concatenate([rsa(row, b, method) for row in a]))
        assert not np.allclose(rsa(a, b, method), ours)  # the rsatoolbox bug this works around


def test_two_condition_rdms():
    """A single pair: cosine is its sign, centred methods 0, and the rank methods that need two pairs NaN."""
    a, b = np.array([[2.0]]), np.array([[3.0]])
    assert compare(a, b, "cosine")[0, 0] == 1.0
    assert compare(a, b, "pearson")[0, 0] == 0.0
    assert compare(a, b, "spearman")[0, 0] == 0.0
    for method in ("kendall_tau_a", "kendall_tau_b", "rho_a"):
        assert np.isnan(compare(a, b, method)[0, 0])


def test_ties_follow_rank_definitions():
    x = np.array([[1.0, 1.0, 2.0, 3.0, 3.0, 3.0]])
    y = np.array([[1.0, 2.0, 2.0, 2.0, 3.0, 4.0]])
    from scipy.stats import kendalltau, rankdata, spearmanr

    assert np.isclose(compare(x, y, "spearman")[0, 0], spearmanr(x[0], y[0]).statistic, rtol=1e-12)
    assert np.isclose(compare(x, y, "kendall_tau_b")[0, 0], kendalltau(x[0], y[0]).statistic, rtol=1e-12)
    rx, ry = rankdata(x[0]) - 3.5, rankdata(y[0]) - 3.5
    assert np.isclose(compare(x, y, "rho_a")[0, 0], 12 * rx @ ry / (6**3 - 6), rtol=1e-12)


def test_aliases():
    assert canonical_method("tau-a") == "kendall_tau_a"
    assert canonical_method("kendall") == "kendall_tau_b"
    assert canonical_method("corr") == "pearson"
    assert canonical_method("corr_cov") == "pearson_cov"
    a, b = random_vectors(2, 6, seed=20), random_vectors(2, 6, seed=21)
    for name, alias in RSA_NAMES.items():
        np.testing.assert_array_equal(compare(a, b, alias), compare(a, b, name))


# ----------------------------------------------------------------------
# bad input
def test_errors_before_work():
    a, b = random_vectors(2, 6, seed=22), random_vectors(2, 7, seed=23)
    with pytest.raises(UnknownNameError, match="spearman"):
        compare(a, a, "spearmann")
    with pytest.raises(ShapeError, match="6 and 7 conditions"):
        compare(a, b)
    with pytest.raises(ShapeError):
        compare(np.ones((2, 5)), a)  # 5 is not a number of pairs
    bad = a.copy()
    bad[0, 1] = np.inf
    with pytest.raises(NonFiniteError):
        compare(bad, a)
    with pytest.raises(LabelError, match="reorder"):
        compare(RDMs(a, conditions=list("abcdef")), RDMs(a, conditions=list("abcdfe")))
    with pytest.raises(DataError, match="whitened"):
        compare(a, a, "pearson", sigma_k=np.ones(6))
    with pytest.raises(ShapeError, match="6 conditions"):
        compare(a, a, "cosine_cov", sigma_k=np.ones(5))
    with pytest.raises(DataError, match="positive"):
        compare(a, a, "cosine_cov", sigma_k=np.r_[np.ones(5), 0.0])
    with pytest.raises(NotSPDError):
        compare(a, a, "cosine_cov", sigma_k=-np.eye(6))
    with pytest.raises(NonFiniteError):
        compare(a, a, "cosine_cov", sigma_k=np.r_[np.ones(5), np.nan])


def test_compare_vectors_and_features_errors():
    a = random_vectors(2, 6, seed=24)
    with pytest.raises(ShapeError, match="n_pairs"):
        compare_vectors(a[0], a)
    with pytest.raises(ShapeError, match="different numbers of pairs"):
        compare_vectors(a, a[:, :10])
    with pytest.raises(ShapeError, match="broadcast"):
        compare_vectors(np.stack([a, a, a]), np.stack([a, a]))
    with pytest.raises(NonFiniteError):
        compare_vectors(np.where(a > 0, np.inf, a), a)
    with pytest.raises(ShapeError):
        compare_vectors(np.ones((2, 5)), np.ones((2, 5)))
    with pytest.raises(DataError, match="compare_vectors"):
        product_features(a, "kendall_tau_a")
    with pytest.raises(UnknownNameError):
        compare_vectors(a, a, "kendal")
