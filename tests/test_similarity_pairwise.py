"""pairwise(): equal to the pair functions, shared precomputation paths, RSA parity with rsatoolbox."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from neuroenc.errors import NonFiniteError, ShapeError, UnknownNameError
from neuroenc.similarity import kernel_alignment as cka_module
from neuroenc.similarity.all_pairs import METRICS, pairwise, rsa_similarity
from neuroenc.similarity.cca import pwcca, svcca
from neuroenc.similarity.kernel_alignment import cka
from neuroenc.similarity.knn import mutual_knn
from neuroenc.similarity.shape import permutation_distance, shape_distance, stochastic_shape_distance


def layers(n=40, widths=(6, 9, 4, 12), seed=0):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, 5))
    return [base @ rng.standard_normal((5, w)) + 0.5 * i * rng.standard_normal((n, w)) for i, w in enumerate(widths)]


CASES = [
    ("cka", cka, {}),
    ("cka", cka, {"kernel": "rbf", "sigma": 0.5}),
    ("cka", cka, {"debiased": True}),
    ("rsa", rsa_similarity, {}),
    ("rsa", rsa_similarity, {"rdm_method": "euclidean", "compare_method": "pearson"}),
    ("rsa", rsa_similarity, {"compare_method": "kendall_tau_a"}),
    ("mutual_knn", mutual_knn, {"k": 5}),
    ("mutual_knn", mutual_knn, {"k": 3, "distance": "euclidean"}),
    ("shape", shape_distance, {}),
    ("shape", shape_distance, {"alpha": 0.3, "score": "euclidean"}),
    ("permutation", permutation_distance, {"score": "euclidean"}),
    ("svcca", svcca, {"variance": 0.9}),
    ("pwcca", pwcca, {}),
]


@pytest.mark.parametrize(("name", "function", "params"), CASES)
def test_equals_pair_function(name, function, params):
    reps = layers()
    out = pairwise(name, reps, **params)
    expected = np.array([[function(a, b, **params) for b in reps] for a in reps])
    distance = name in ("shape", "permutation")
    if distance:
        np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    assert np.all(np.diag(out) == 0.0) if distance else np.allclose(np.diag(out), 1.0)
    if name != "pwcca":
        np.testing.assert_array_equal(out, out.T)


def test_stochastic_shape():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 1, 3))
    reps = [base + s * rng.standard_normal((6, 7, 3)) for s in (0.3, 1.0, 2.0)]
    out = pairwise("stochastic_shape", reps, alpha=0.5)
    expected = np.array([[stochastic_shape_distance(a, b, 0.5) if a is not b else 0 for b in reps] for a in reps])
    np.testing.assert_allclose(out, expected, rtol=1e-10)
    with pytest.raises(ShapeError, match="trial-resolved"):
        pairwise("stochastic_shape", layers())


def test_threads_and_input_forms():
    reps = layers()
    one = pairwise("shape", reps, n_jobs=1)
    np.testing.assert_array_equal(pairwise("shape", reps, n_jobs=2), one)
    np.testing.assert_array_equal(pairwise("cka", reps, n_jobs=1), pairwise("cka", reps, n_jobs=2))
    np.testing.assert_allclose(pairwise("shape", {f"layer{i}": r for i, r in enumerate(reps)}), one)
    np.testing.assert_array_equal(pairwise(metric="shape", representations=reps, n_jobs=1), one)

    class FakeActivations:  # the Activations contract: layer_names + flattened(layer)
        layer_names = ["a", "b", "c", "d"]

        def flattened(self, name):
            return reps[self.layer_names.index(name)].astype(np.float32)

    np.testing.assert_allclose(pairwise("shape", FakeActivations()), one, rtol=1e-5, atol=1e-6)
    stack = np.stack([r[:, :4] for r in reps])  # (n_layers, n_stimuli, n_units) array
    np.testing.assert_allclose(pairwise("cka", stack), pairwise("cka", list(stack)))


def test_callable_metrics():
    reps = layers(widths=(5, 5, 5))
    calls = []

    def mean_abs_corr(X, Y, offset=0.0):
        calls.append(1)
        return float(np.abs(np.corrcoef(X.T, Y.T)[:5, 5:]).mean()) + offset

    out = pairwise(mean_abs_corr, reps, offset=1.0)
    assert len(calls) == 6  # upper triangle with the diagonal
    assert out[0, 1] == out[1, 0] == pytest.approx(mean_abs_corr(reps[0], reps[1], 1.0))

    def asymmetric(X, Y):
        return float(X.sum() - Y.sum())

    out = pairwise(asymmetric, reps, symmetric=False)
    np.testing.assert_allclose(out, -out.T)


def test_large_gram_stack_falls_back_to_pairs(monkeypatch):
    reps = layers(n=30)
    expected = pairwise("cka", reps, debiased=True)
    monkeypatch.setattr(cka_module, "_GRAM_STACK_BYTES", 1000)
    np.testing.assert_allclose(pairwise("cka", reps, debiased=True), expected, rtol=1e-10)


def test_constant_layer_is_zero_not_nan():
    reps = layers()
    reps[2] = np.full((40, 5), 3.0)
    out = pairwise("cka", reps)
    assert np.all(out[2] == 0) and np.all(out[:, 2] == 0)
    assert np.isfinite(pairwise("shape", reps)).all()


def test_rsa_matches_scipy():
    X, Y = layers(widths=(8, 11))[:2]
    rho = spearmanr(pdist(X, "correlation"), pdist(Y, "correlation"))[0]
    assert rsa_similarity(X, Y) == pytest.approx(rho, rel=1e-10)


@pytest.fixture(scope="module")
def haxby_patterns(data_dir):
    from neuroenc.datasets import load_haxby

    bd = load_haxby("volumes", data_dir=data_dir)
    bd = bd.select(condition=sorted(set(bd.obs["condition"]) - {"rest"}))
    return bd.average(by="condition", within="run")  # 96 (run, category) patterns x 530 voxels


def test_rsa_matches_rsatoolbox_on_haxby(haxby_dir, haxby_patterns):
    rsd = pytest.importorskip("rsatoolbox.data")
    rsr = pytest.importorskip("rsatoolbox.rdm")
    data = haxby_patterns.data.astype(np.float64)
    rois = [data[:, :150], data[:, 150:300], data[:, 300:]]
    rdms = rsr.concat([rsr.calc_rdm(rsd.Dataset(roi), method="correlation") for roi in rois])
    for ours, theirs in (("spearman", "spearman"), ("pearson", "corr"), ("kendall_tau_a", "tau-a")):
        expected = rsr.compare(rdms, rdms, method=theirs)
        out = pairwise("rsa", rois, compare_method=ours)
        np.testing.assert_allclose(out, expected, rtol=1e-8, atol=1e-12)
    # BrainData representations: the three regions as separate BrainData.
    parts = [haxby_patterns.pick_features(list(range(a, b))) for a, b in ((0, 150), (150, 300), (300, 530))]
    np.testing.assert_allclose(pairwise("rsa", parts), rsr.compare(rdms, rdms, method="spearman"), rtol=1e-8)


def test_real_haxby_all_metrics(haxby_dir, haxby_patterns):
    data = haxby_patterns.data.astype(np.float64)
    rois = [data[:, :60], data[:, 60:130], data[:, 130:200]]
    for name in METRICS:
        if name == "stochastic_shape":
            continue
        out = pairwise(name, rois)
        assert out.shape == (3, 3) and np.isfinite(out).all()
        pair_function = {
            "cka": cka,
            "rsa": rsa_similarity,
            "mutual_knn": mutual_knn,
            "shape": shape_distance,
            "permutation": permutation_distance,
            "svcca": svcca,
            "pwcca": pwcca,
        }[name]
        assert out[0, 1] == pytest.approx(pair_function(rois[0], rois[1]), rel=1e-9)


# ----------------------------------------------------------------------
def test_errors_before_work():
    reps = layers()
    with pytest.raises(UnknownNameError, match="cka"):
        pairwise("cosine_similarity", reps)
    with pytest.raises(TypeError, match="alpah"):
        pairwise("shape", reps, alpah=0.5)
    with pytest.raises(TypeError, match="symmetric"):
        pairwise("cka", reps, symmetric=False)
    with pytest.raises(ShapeError, match=r"representations\[2\] has shape \(39, 4\)"):
        pairwise("cka", reps[:2] + [reps[2][:39]])
    bad = [r.copy() for r in reps]
    bad[3][5, 1] = np.nan
    with pytest.raises(NonFiniteError, match=r"representations\[3\]"):
        pairwise("shape", bad)
    with pytest.raises(ShapeError, match="empty"):
        pairwise("cka", [])
    with pytest.raises(ShapeError, match="sequence"):
        pairwise("cka", "layers")
    with pytest.raises(UnknownNameError, match="angular"):
        pairwise("shape", reps, score="cosine")
