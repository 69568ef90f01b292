"""Tests of the activation reductions against scikit-learn and plain numpy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA
from sklearn.decomposition import IncrementalPCA
from sklearn.random_projection import SparseRandomProjection as SkSRP

import neuroenc.activations.reduce as reduce_mod
from neuroenc.activations.reduce import (
    PCA,
    REDUCERS,
    Flatten,
    FunctionReducer,
    SparseRandomProjection,
    SpatialMean,
    make_reducer,
    resolve_reducers,
)
from neuroenc.errors import NonFiniteError, ShapeError, UnknownNameError


@pytest.fixture(scope="module")
def haxby_betas(haxby_dir):
    """Real fMRI estimates (96 x 530), the 'activations' of a brain layer."""
    from neuroenc.datasets import load_haxby

    return load_haxby("betas").data


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


# ----------------------------------------------------------------------
# Flatten and SpatialMean


def test_flatten_matches_reshape_and_keeps_dtype():
    X = np.random.default_rng(0).standard_normal((5, 3, 4, 2)).astype(np.float32)
    out = Flatten().fit_transform(X)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, X.reshape(5, -1))
    assert Flatten().output_shape((3, 4, 2)) == (24,)
    np.testing.assert_array_equal(Flatten().fit_transform(np.arange(4.0)), np.arange(4.0)[:, None])


@pytest.mark.parametrize(
    "shape, axes",
    [((4, 6, 5, 5), (2, 3)), ((4, 7, 16), (1,)), ((4, 2, 3, 4, 5), (2, 3, 4)), ((4, 9), ())],
)
def test_spatial_mean_auto_axes(shape, axes):
    X = np.random.default_rng(1).standard_normal(shape)
    red = SpatialMean().fit(X)
    out = red.transform(X)
    expected = X.mean(axis=axes) if axes else X
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert red.output_shape(shape[1:]) == out.shape[1:]


def test_spatial_mean_explicit_axes_and_float32():
    X = np.random.default_rng(2).standard_normal((3, 4, 50)).astype(np.float32)
    out = SpatialMean(axes=(2,)).fit_transform(X)  # 1-D convolution: average the length axis
    assert out.dtype == np.float32 and out.shape == (3, 4)
    np.testing.assert_allclose(out, X.astype(np.float64).mean(axis=2), rtol=1e-6)
    assert SpatialMean(axes=(2,)).output_shape((4, 50)) == (4,)


def test_spatial_mean_bad_axes():
    with pytest.raises(ShapeError, match="stimulus axis"):
        SpatialMean(axes=(0, 1))
    with pytest.raises(UnknownNameError, match="auto"):
        SpatialMean(axes="spatial")
    with pytest.raises(ShapeError, match="do not exist"):
        SpatialMean(axes=(3,)).fit_transform(np.ones((2, 3, 4)))


def test_transform_checks_fit_and_shape():
    with pytest.raises(ShapeError, match="not fitted"):
        Flatten().transform(np.ones((2, 3)))
    red = Flatten().fit(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"fitted on stimuli of shape \(3,\)"):
        red.transform(np.ones((2, 4)))
    with pytest.raises(NonFiniteError):
        red.transform(np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(ShapeError, match="numeric"):
        red.transform(np.array([["a", "b", "c"]]))


# ----------------------------------------------------------------------
# Sparse random projection: sklearn's semantics


@pytest.mark.parametrize("n_features, n_components, density", [(4000, 300, "auto"), (900, 50, 0.1), (200, 20, 1.0)])
def test_srp_matrix_semantics_match_sklearn(n_features, n_components, density):
    X = np.zeros((2, n_features))
    ours = SparseRandomProjection(n_components, density=density, random_state=0).fit(X)
    ref = SkSRP(n_components, density=density, random_state=0).fit(X)
    assert ours.density_ == pytest.approx(ref.density_, rel=1e-12)
    R = ours.components_.toarray()
    Rs = ref.components_.toarray() if hasattr(ref.components_, "toarray") else ref.components_
    assert R.shape == Rs.shape == (n_components, n_features)
    # Same value set: 0 and +-1/sqrt(density * k).
    np.testing.assert_allclose(np.unique(np.abs(R[R != 0])), np.unique(np.abs(Rs[Rs != 0])), rtol=1e-12)
    np.testing.assert_allclose(np.abs(R[R != 0]), 1 / np.sqrt(ours.density_ * n_components), rtol=1e-12)
    # Fraction of non-zeros and of positive signs within 5 binomial standard errors.
    nnz, size = np.count_nonzero(R), R.size
    assert abs(nnz / size - ours.density_) < 5 * np.sqrt(ours.density_ * (1 - ours.density_) / size) + 1e-12
    pos = np.count_nonzero(R > 0)
    assert abs(pos / nnz - 0.5) < 5 * np.sqrt(0.25 / nnz)


def test_srp_preserves_norms_like_sklearn(haxby_betas):
    X = haxby_betas - haxby_betas.mean(axis=0)
    k = 256
    ours = SparseRandomProjection(k, random_state=3).fit(X).transform(X)
    ref = SkSRP(k, random_state=3).fit_transform(X)
    d = np.linalg.norm(X[:, None] - X[None], axis=-1)[np.triu_indices(len(X), 1)]
    ratio_ours = np.linalg.norm(ours[:, None] - ours[None], axis=-1)[np.triu_indices(len(X), 1)] / d
    ratio_ref = np.linalg.norm(ref[:, None] - ref[None], axis=-1)[np.triu_indices(len(X), 1)] / d
    # Both are Johnson-Lindenstrauss embeddings: distance ratios near 1 with a similar spread.
    assert abs(np.mean(ratio_ours**2) - 1) < 0.05 and abs(np.mean(ratio_ref**2) - 1) < 0.05
    assert np.std(ratio_ours) == pytest.approx(np.std(ratio_ref), rel=0.35)


def test_srp_transform_is_the_matrix_product_fixed_across_batches():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((30, 3, 10, 10))
    srp = SparseRandomProjection(40, random_state=7).fit(X[:4])
    full = srp.transform(X)
    np.testing.assert_allclose(full, X.reshape(30, -1) @ srp.components_.toarray().T, rtol=1e-12, atol=1e-12)
    batches = np.concatenate([srp.transform(X[i : i + 7]) for i in range(0, 30, 7)])
    np.testing.assert_array_equal(batches, full)
    # The matrix depends on the seed only: refitting on other data gives the same one.
    again = SparseRandomProjection(40, random_state=7).fit(X[10:])
    assert (again.components_ != srp.components_).nnz == 0
    other = SparseRandomProjection(40, random_state=8).fit(X)
    assert (other.components_ != srp.components_).nnz > 0
    f32 = srp.transform(X.astype(np.float32))
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, full, rtol=1e-4, atol=1e-4)


def test_srp_state_roundtrip_and_params():
    X = np.random.default_rng(5).standard_normal((6, 100))
    srp = SparseRandomProjection(10, random_state=1).fit(X)
    fresh = SparseRandomProjection(10, random_state=1).set_state((100,), srp.get_state())
    np.testing.assert_array_equal(fresh.transform(X), srp.transform(X))
    assert srp.config() == {"name": "srp", "n_components": 10, "density": "auto", "random_state": 1}
    seeded = SparseRandomProjection(10, random_state=None)
    assert isinstance(seeded.random_state, int)  # a drawn seed, recorded in config


def test_srp_warns_when_not_reducing_like_sklearn():
    with pytest.warns(UserWarning, match="does not reduce"):
        SparseRandomProjection(50).fit(np.ones((2, 20)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_components": 0}, "positive integer"),
        ({"n_components": 2.5}, "positive integer"),
        ({"n_components": 5, "density": 1.5}, r"\(0, 1\]"),
        ({"n_components": 5, "density": 0}, "> 0"),
        ({"n_components": 5, "random_state": "x"}, "random_state"),
    ],
)
def test_srp_bad_parameters(kwargs, match):
    with pytest.raises(ShapeError, match=match):
        SparseRandomProjection(**kwargs)


# ----------------------------------------------------------------------
# PCA: exact, equal to sklearn's PCA


def _check_against_sklearn(X: np.ndarray, k: int) -> None:
    ours = PCA(k, n_fit=len(X)).fit(X)
    ref = SkPCA(k, svd_solver="full").fit(X.reshape(len(X), -1))
    # Same sign convention as sklearn, so no alignment is needed.
    assert rel_err(ours.components_, ref.components_) < 1e-8
    assert rel_err(ours.explained_variance_, ref.explained_variance_) < 1e-8
    assert rel_err(ours.explained_variance_ratio_, ref.explained_variance_ratio_) < 1e-8
    assert rel_err(ours.transform(X), ref.transform(X.reshape(len(X), -1))) < 1e-8


def test_pca_matches_sklearn_on_real_fmri(haxby_betas):
    _check_against_sklearn(haxby_betas, 10)  # wide: 96 stimuli x 530 units (Gram path)
    _check_against_sklearn(haxby_betas[:, :40].copy(), 8)  # tall: 96 x 40 (covariance path)


def test_pca_matches_sklearn_on_conv_shaped_input():
    rng = np.random.default_rng(6)
    latent = rng.standard_normal((60, 5)) * np.array([10.0, 6, 4, 2, 1])
    X = (latent @ rng.standard_normal((5, 4 * 6 * 6))).reshape(60, 4, 6, 6) + 0.1 * rng.standard_normal((60, 4, 6, 6))
    _check_against_sklearn(X + 3.0, 5)


def test_pca_single_batch_incremental_pca_agrees():
    X = np.random.default_rng(7).standard_normal((50, 30)) @ np.diag(np.linspace(5, 1, 30))
    ours = PCA(6, n_fit=50).fit(X)
    ref = IncrementalPCA(6, batch_size=50).fit(X)
    # IncrementalPCA on one batch is an exact PCA; its signs follow another convention.
    signs = np.sign(np.sum(ours.components_ * ref.components_, axis=1))
    assert rel_err(ours.components_ * signs[:, None], ref.components_) < 1e-8
    assert rel_err(ours.explained_variance_, ref.explained_variance_) < 1e-8


def test_pca_blocks_do_not_change_the_result(monkeypatch):
    X = np.random.default_rng(8).standard_normal((20, 301))
    whole = PCA(4, n_fit=20).fit(X)
    monkeypatch.setattr(reduce_mod, "_BLOCK_BYTES", 8 * 20 * 7)  # 7 columns per block
    blocked = PCA(4, n_fit=20).fit(X)
    assert rel_err(blocked.components_, whole.components_) < 1e-12
    Y = np.random.default_rng(9).standard_normal((500, 6))
    whole = PCA(3, n_fit=500).fit(Y)
    monkeypatch.setattr(reduce_mod, "_BLOCK_BYTES", 8 * 6 * 11)  # 11 rows per block
    assert rel_err(PCA(3, n_fit=500).fit(Y).components_, whole.components_) < 1e-12


def test_pca_float32_input_and_state_roundtrip():
    X = np.random.default_rng(10).standard_normal((40, 3, 5)) @ np.diag([3.0, 2, 1.5, 1, 0.5])
    pca64 = PCA(4, n_fit=40).fit(X)
    pca32 = PCA(4, n_fit=40).fit(X.astype(np.float32))
    out32 = pca32.transform(X.astype(np.float32))
    assert out32.dtype == np.float32 and pca32.output_dtype(np.float32) == np.float32
    np.testing.assert_allclose(out32, pca64.transform(X), rtol=1e-4, atol=1e-4)
    state = pca32.get_state()
    shapes = pca32.state_shapes((3, 5), np.float32)
    assert {k: (v.shape, v.dtype) for k, v in state.items()} == {k: (s, np.dtype(d)) for k, (s, d) in shapes.items()}
    fresh = PCA(4, n_fit=40).set_state((3, 5), state)
    np.testing.assert_array_equal(fresh.transform(X.astype(np.float32)), out32)


def test_pca_bad_parameters_and_inputs():
    with pytest.raises(ShapeError, match="n_fit=3 is smaller"):
        PCA(5, n_fit=3)
    with pytest.raises(ShapeError, match="positive integer"):
        PCA(0)
    with pytest.raises(ShapeError, match="at least 5 stimuli"):
        PCA(5, n_fit=10).fit(np.random.default_rng(0).standard_normal((4, 20)))
    with pytest.raises(ShapeError, match="not fitted"):
        PCA(2).transform(np.ones((3, 3)))
    assert PCA(7).min_fit_stimuli == 7


# ----------------------------------------------------------------------
# Specs


def test_make_reducer_names_instances_and_callables():
    assert set(REDUCERS) == {"flatten", "mean", "srp", "pca"}
    for name, cls in REDUCERS.items():
        red = make_reducer(name)
        assert type(red) is cls and red.name == name
    proto = PCA(3, n_fit=10)
    copied = make_reducer(proto)
    assert copied is not proto and copied.get_params() == proto.get_params()
    func = make_reducer(lambda b: b[:, :2])
    assert isinstance(func, FunctionReducer)
    np.testing.assert_array_equal(func.fit_transform(np.arange(12.0).reshape(3, 4)), [[0, 1], [4, 5], [8, 9]])
    assert make_reducer(None) is None
    with pytest.raises(UnknownNameError, match="'flatten', 'mean', 'srp', 'pca'"):
        make_reducer("umap")
    with pytest.raises(UnknownNameError, match="got int"):
        make_reducer(3)


def test_function_reducer_must_keep_rows():
    with pytest.raises(ShapeError, match="one row per stimulus"):
        FunctionReducer(lambda b: b.sum()).fit_transform(np.ones((3, 2)))
    with pytest.raises(NonFiniteError, match="reduce function contains NaN"):
        FunctionReducer(lambda b: np.where(b > 0, b, np.nan)).fit_transform(-np.ones((3, 2)))
    with pytest.raises(UnknownNameError, match="not callable"):
        FunctionReducer("mean")


def test_resolve_reducers_per_layer_and_globs():
    names = ["features.0", "features.3", "classifier.1"]
    specs = resolve_reducers({"features.*": "mean", "features.3": PCA(2, n_fit=5)}, names)
    assert isinstance(specs["features.0"], SpatialMean)
    assert isinstance(specs["features.3"], PCA)  # the exact name wins over the glob
    assert specs["classifier.1"] is None
    shared = resolve_reducers("srp", names)
    assert len({id(r) for r in shared.values()}) == 3  # one instance per layer
    assert resolve_reducers(None, names) == dict.fromkeys(names)
    with pytest.raises(UnknownNameError, match="'conv9', which matches no selected layer"):
        resolve_reducers({"conv9": "mean"}, names)
    with pytest.raises(UnknownNameError, match="choose one of"):
        resolve_reducers({"features.0": "median"}, names)
