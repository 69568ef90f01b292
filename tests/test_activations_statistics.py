"""Per-layer activation statistics against independent formulas, closed-form cases and scipy."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from neuroenc.activations import statistics as st
from neuroenc.activations.statistics import (
    activation_statistics,
    dead_units,
    effective_rank,
    fraction_nonzero,
    massive_activations,
    neural_collapse,
    participation_ratio,
    top_k_mass,
    unit_selectivity,
)
from neuroenc.errors import EmptySelectionError, LabelError, NonFiniteError, ShapeError, UnknownNameError


class FakeActivations:
    """The part of the ``Activations`` contract the statistics use (layer_names, flattened)."""

    def __init__(self, layers: dict) -> None:
        self._layers = layers

    @property
    def layer_names(self) -> list:
        return list(self._layers)

    def flattened(self, layer: str) -> np.ndarray:
        arr = self._layers[layer]
        return arr.reshape(arr.shape[0], -1)


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(7)


@pytest.fixture(scope="module")
def haxby_betas(haxby_dir):
    from neuroenc.datasets.local import load_haxby

    bold = load_haxby(mode="betas", data_dir=haxby_dir.parent)
    return np.asarray(bold.data, dtype=np.float64), bold.obs["condition"].to_numpy()


# --------------------------------------------------------------------------- reference formulas


def ref_spectrum(X, center=True):
    Xc = X - X.mean(axis=0) if center else X
    return np.linalg.svd(Xc, compute_uv=False)


def ref_effective_rank(X, center=True):
    s = ref_spectrum(X, center)
    s = s[s > s[0] * 1e-12]
    p = s / s.sum()
    return np.exp(-np.sum(p * np.log(p)))


def ref_participation_ratio(X):
    lam = np.linalg.eigvalsh(np.cov(X, rowvar=False))
    return lam.sum() ** 2 / (lam**2).sum()


def ref_collapse(X, labels):
    classes = np.unique(labels)
    C, N = len(classes), len(X)
    mu = np.array([X[labels == c].mean(axis=0) for c in classes])
    g = X.mean(axis=0)
    Sw = sum((X[labels == c] - mu[i]).T @ (X[labels == c] - mu[i]) for i, c in enumerate(classes)) / N
    Sb = (mu - g).T @ (mu - g) / C
    nc1 = np.trace(Sw @ np.linalg.pinv(Sb)) / C
    M = mu - g
    norms = np.linalg.norm(M, axis=1)
    cos = [M[i] @ M[j] / (norms[i] * norms[j]) for i in range(C) for j in range(i + 1, C)]
    return {
        "nc1": nc1,
        "within_between": np.trace(Sw) / np.trace(Sb),
        "equinorm": norms.std() / norms.mean(),
        "equiangularity": np.std(cos),
        "max_angle": np.mean(np.abs(np.asarray(cos) + 1 / (C - 1))),
    }


# --------------------------------------------------------------------------- sparsity, dead units, outliers


def test_fraction_nonzero_matches_counts(rng):
    X = np.maximum(rng.standard_normal((40, 6, 5)), 0)  # ReLU-like, N-D
    flat = X.reshape(40, -1)
    assert fraction_nonzero(X) == pytest.approx(np.mean(flat > 0), abs=0)
    assert fraction_nonzero(X, 0.5) == pytest.approx(np.mean(flat > 0.5), abs=0)
    rel = np.abs(flat) > 0.3 * np.abs(flat).max(axis=1, keepdims=True)
    assert fraction_nonzero(X, 0.3, relative=True) == pytest.approx(rel.mean(), abs=0)


def test_top_k_mass_matches_sorting(rng):
    X = rng.standard_normal((30, 50))
    mag = np.sort(np.abs(X), axis=1)[:, ::-1]
    for k in (1, 7, 50):
        expected = np.mean(mag[:, :k].sum(axis=1) / mag.sum(axis=1))
        assert top_k_mass(X, k) == pytest.approx(expected, rel=1e-12)
    assert top_k_mass(np.ones((4, 10)), 3) == pytest.approx(0.3)
    one_hot = np.zeros((5, 10))
    one_hot[np.arange(5), [1, 3, 5, 7, 9]] = [1, -2, 3, 4, 5]
    assert top_k_mass(one_hot, 1) == 1.0
    assert top_k_mass(np.zeros((3, 4)), 2) == 1.0  # silent stimuli are as sparse as can be


def test_dead_units(rng):
    X = np.maximum(rng.standard_normal((50, 20)), 0)
    X[:, [3, 11]] = 0
    X[:, 15] = 0.01
    np.testing.assert_array_equal(dead_units(X), [3, 11])
    np.testing.assert_array_equal(dead_units(X, 0.05), np.flatnonzero(np.abs(X).max(axis=0) <= 0.05))


def test_massive_activations_find_planted_outlier(rng):
    X = rng.standard_normal((20, 64))
    X[4, 9] = 5000.0
    X[11, 30] = -3000.0
    X[:, 50] = 0.0  # zeros are left out of the median
    res = massive_activations(X, ratio=100)
    mag = np.abs(X)
    medians = np.array([np.median(row[row > 0]) for row in mag])
    rel = mag / medians[:, None]
    assert res.n_massive == np.sum(rel > 100) == 2
    np.testing.assert_array_equal(res.units, [9, 30])  # by decreasing magnitude
    assert res.max_ratio == pytest.approx(rel.max(), rel=1e-12)
    assert res.max_magnitude == 5000.0
    assert res.median_magnitude == pytest.approx(np.median(medians))
    assert res.fraction_massive == pytest.approx(2 / X.size)
    assert massive_activations(X, ratio=100, min_magnitude=4000).n_massive == 1
    assert massive_activations(X, ratio=1e6).n_massive == 0


# --------------------------------------------------------------------------- dimensionality


def test_participation_ratio_of_isotropic_gaussian_is_n_units(rng):
    X = rng.standard_normal((20000, 16))
    assert participation_ratio(X) == pytest.approx(16, rel=0.01)
    assert participation_ratio(X) == pytest.approx(ref_participation_ratio(X), rel=1e-10)


@pytest.mark.parametrize("shape", [(200, 30), (25, 300)])  # units x units and stimuli x stimuli branches
def test_dimensionality_matches_svd_formulas(rng, shape):
    X = rng.standard_normal(shape) @ np.diag(np.linspace(0.1, 3, shape[1]))
    assert participation_ratio(X) == pytest.approx(ref_participation_ratio(X), rel=1e-10)
    for center in (True, False):
        assert effective_rank(X, center=center) == pytest.approx(ref_effective_rank(X, center), rel=1e-8)


def test_effective_rank_of_rank_r_data(rng):
    for r in (1, 3, 8):
        X = rng.standard_normal((120, r)) @ rng.standard_normal((r, 90))
        assert 1 <= effective_rank(X, center=False) <= r + 1e-9
        assert 1 <= effective_rank(X) <= r + 1e-9
        assert participation_ratio(X) <= r + 1e-9
    # equal non-zero singular values: the effective rank is the rank
    U = np.linalg.qr(rng.standard_normal((60, 5)))[0]
    V = np.linalg.qr(rng.standard_normal((40, 5)))[0]
    assert effective_rank(U @ V.T, center=False) == pytest.approx(5, rel=1e-10)
    assert participation_ratio(np.zeros((10, 4))) == 0.0
    assert effective_rank(np.ones((10, 4))) == 0.0  # constant layer


def test_float32_and_blocked_accumulation_agree(rng, monkeypatch):
    X = rng.standard_normal((64, 400)).astype(np.float32)
    ref = (participation_ratio(X.astype(np.float64)), effective_rank(X.astype(np.float64)))
    monkeypatch.setattr(st, "_BLOCK_ELEMENTS", 1000)  # many small blocks
    assert participation_ratio(X) == pytest.approx(ref[0], rel=1e-10)
    assert effective_rank(X) == pytest.approx(ref[1], rel=1e-10)
    assert top_k_mass(X, 5) == pytest.approx(top_k_mass(X.astype(np.float64), 5), rel=1e-10)


# --------------------------------------------------------------------------- neural collapse


@pytest.mark.parametrize("shape", [(90, 12), (45, 200)])
def test_neural_collapse_matches_pinv_formula(rng, shape):
    labels = np.array(["a", "b", "c", "d", "e"])[rng.integers(0, 5, shape[0])]
    X = rng.standard_normal(shape)
    X[labels == "b"] += 1.5
    res = neural_collapse(X, labels)
    ref = ref_collapse(X, labels)
    for key, value in ref.items():
        assert getattr(res, key) == pytest.approx(value, rel=1e-8), key
    assert res.n_classes == 5


def test_neural_collapse_closed_forms(rng):
    # Means on a simplex equiangular tight frame, every stimulus on its class mean.
    C = 4
    etf = np.eye(C) - 1 / C
    labels = np.repeat(np.arange(C), 6)
    X = etf[labels] @ np.linalg.qr(rng.standard_normal((10, C)))[0].T
    res = neural_collapse(X, labels)
    assert res.nc1 == pytest.approx(0, abs=1e-20)
    assert res.within_between == pytest.approx(0, abs=1e-20)
    assert res.equinorm == pytest.approx(0, abs=1e-12)
    assert res.equiangularity == pytest.approx(0, abs=1e-12)
    assert res.max_angle == pytest.approx(0, abs=1e-12)
    # Adding within-class noise makes NC1 grow.
    noisy = neural_collapse(X + 0.1 * rng.standard_normal(X.shape), labels)
    assert 0 < noisy.nc1 < neural_collapse(X + rng.standard_normal(X.shape), labels).nc1
    # Coinciding class means: the classes are not separated at all.
    same = neural_collapse(np.tile(rng.standard_normal((6, 3)), (2, 1)), np.repeat([0, 1], 6))
    assert np.isinf(same.nc1) and np.isinf(same.within_between)


# --------------------------------------------------------------------------- selectivity


@pytest.mark.parametrize("equal_var", [False, True])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_selectivity_equals_scipy_ttest(rng, equal_var, alternative):
    labels = np.repeat(["face", "house", "chair", "shoe"], [15, 10, 9, 6])
    X = rng.standard_normal((40, 30)) * rng.uniform(0.5, 2, 30)
    X[labels == "face", :5] += 1.0
    df = unit_selectivity(
        X, labels, "face", ["house", "chair"], equal_var=equal_var, alternative=alternative, correction="none"
    )
    a, b = X[labels == "face"], X[np.isin(labels, ["house", "chair"])]
    ref = scipy.stats.ttest_ind(a, b, equal_var=equal_var, alternative=alternative)
    np.testing.assert_allclose(df["t"], ref.statistic, rtol=1e-10)
    np.testing.assert_allclose(df["p"], ref.pvalue, rtol=1e-9)
    np.testing.assert_allclose(df["dof"], ref.df, rtol=1e-10)
    np.testing.assert_array_equal(df["p_adjusted"], df["p"])
    np.testing.assert_allclose(df["mean_positive"], a.mean(axis=0), rtol=1e-12)
    ss = (len(a) - 1) * a.var(axis=0, ddof=1) + (len(b) - 1) * b.var(axis=0, ddof=1)
    pooled = np.sqrt(ss / (len(a) + len(b) - 2))
    np.testing.assert_allclose(df["d"], (a.mean(axis=0) - b.mean(axis=0)) / pooled, rtol=1e-10)


def test_selectivity_fdr_and_one_vs_rest(rng):
    labels = np.repeat([0, 1, 2], 12)
    X = rng.standard_normal((36, 25))
    X[labels == 2, 3] += 3
    df = unit_selectivity(X, labels, 2)  # negative=None: every other class
    ref = scipy.stats.ttest_ind(X[labels == 2], X[labels != 2], equal_var=False)
    np.testing.assert_allclose(df["p_adjusted"], scipy.stats.false_discovery_control(ref.pvalue), rtol=1e-10)
    assert df["p_adjusted"].idxmin() == 3
    per_class = unit_selectivity(X, labels, correction="bonferroni")
    assert list(per_class.columns[:2]) == ["positive", "unit"] and len(per_class) == 3 * 25
    for c in range(3):
        block = per_class[per_class["positive"] == c].reset_index(drop=True)
        alone = unit_selectivity(X, labels, c, correction="bonferroni")
        pd.testing.assert_frame_equal(block.drop(columns="positive"), alone)


def test_selectivity_of_constant_units_is_quiet(rng):
    labels = np.repeat([0, 1], 5)
    X = np.column_stack([np.ones(10), labels.astype(float), rng.standard_normal(10)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = unit_selectivity(X, labels, 1, 0, alternative="greater")
    assert np.isnan(df["t"][0]) and np.isnan(df["p"][0])
    assert df["t"][1] == np.inf and df["p"][1] == 0.0
    assert np.isfinite(df["p_adjusted"][1:]).all()


def test_haxby_face_voxels_match_scipy(haxby_betas):
    X, labels = haxby_betas
    df = unit_selectivity(X, labels, "face", "house", alternative="greater")
    ref = scipy.stats.ttest_ind(X[labels == "face"], X[labels == "house"], equal_var=False, alternative="greater")
    np.testing.assert_allclose(df["t"], ref.statistic, rtol=1e-10)
    np.testing.assert_allclose(df["p"], ref.pvalue, rtol=1e-8, atol=1e-300)
    # the ventral temporal slice holds strongly house-preferring voxels (parahippocampal place area)
    houses = unit_selectivity(X, labels, "house", "face", alternative="greater")
    assert (houses["p_adjusted"] < 0.05).sum() > 20


# --------------------------------------------------------------------------- several layers


def make_layers(rng):
    return {
        "conv": np.maximum(rng.standard_normal((30, 4, 3, 3)), 0).astype(np.float32),
        "fc": rng.standard_normal((30, 20)),
        "logits": rng.standard_normal((30, 3)),
    }


@pytest.mark.parametrize("container", [dict, FakeActivations])
def test_layered_inputs_give_one_row_per_layer(rng, container):
    layers = make_layers(rng)
    acts = container(layers)
    labels = np.repeat(["x", "y", "z"], 10)
    checks = [
        (fraction_nonzero(acts, 0.1), "fraction_nonzero", lambda A: fraction_nonzero(A, 0.1)),
        (top_k_mass(acts, 2), "top_k_mass", lambda A: top_k_mass(A, 2)),
        (participation_ratio(acts), "participation_ratio", participation_ratio),
        (effective_rank(acts), "effective_rank", effective_rank),
        (neural_collapse(acts, labels), "nc1", lambda A: neural_collapse(A, labels).nc1),
        (massive_activations(acts, 5), "max_ratio", lambda A: massive_activations(A, 5).max_ratio),
        (dead_units(acts), "n_dead", lambda A: len(dead_units(A))),
    ]
    for frame, column, single in checks:
        assert list(frame["layer"]) == ["conv", "fc", "logits"]
        for row, arr in zip(frame.itertuples(), layers.values()):
            assert getattr(row, column) == pytest.approx(single(arr), rel=1e-12), column
    sel = unit_selectivity(acts, labels, "x")
    assert list(sel.columns[:2]) == ["layer", "unit"] and len(sel) == 36 + 20 + 3


def test_activation_statistics_gathers_the_functions(rng):
    layers = make_layers(rng)
    labels = np.repeat(["x", "y", "z"], 10)
    table = activation_statistics(layers, labels, threshold=0.2, top_k=2, contrast=("x", None), layers=["conv", "fc"])
    assert list(table["layer"]) == ["conv", "fc"]
    for row in table.itertuples():
        A = layers[row.layer]
        flat = A.reshape(30, -1)
        assert row.n_units == flat.shape[1] and row.n_stimuli == 30
        assert row.fraction_nonzero == pytest.approx(fraction_nonzero(A, 0.2))
        assert row.top_k_mass == pytest.approx(top_k_mass(A, 2))
        assert row.n_dead == len(dead_units(A, 0.2))
        assert row.participation_ratio == pytest.approx(participation_ratio(A))
        assert row.effective_rank == pytest.approx(effective_rank(A))
        assert row.max_ratio == pytest.approx(massive_activations(A).max_ratio)
        collapse = neural_collapse(A, labels)
        assert row.nc1 == pytest.approx(collapse.nc1) and row.equinorm == pytest.approx(collapse.equinorm)
        sel = unit_selectivity(A, labels, "x", alternative="greater")
        assert row.n_selective == (sel["p_adjusted"] <= 0.05).sum()
        assert row.max_t == pytest.approx(sel["t"].max())
    plain = activation_statistics(layers["fc"])
    assert list(plain["layer"]) == ["X"] and "nc1" not in plain.columns and "top_k_mass" not in plain.columns


def test_real_activations_container(rng):
    activationdata = pytest.importorskip("neuroenc.activationdata")
    layers = make_layers(rng)
    acts = activationdata.Activations(layers)
    table = activation_statistics(acts, np.repeat(["x", "y", "z"], 10))
    assert list(table["layer"]) == acts.layer_names
    assert table["effective_rank"].iloc[1] == pytest.approx(effective_rank(layers["fc"]))


def test_lazy_activations(rng, tmp_path, monkeypatch):
    activationdata = pytest.importorskip("neuroenc.activationdata")
    layers = make_layers(rng)
    activationdata.Activations(layers).to_hdf5(tmp_path / "acts.h5")
    lazy = activationdata.Activations.from_hdf5(tmp_path / "acts.h5")
    assert lazy.is_lazy
    labels = np.repeat(["x", "y", "z"], 10)
    pd.testing.assert_frame_equal(activation_statistics(lazy, labels), activation_statistics(layers, labels))
    reads = []
    read = activationdata.H5Layer.read
    monkeypatch.setattr(
        activationdata.H5Layer, "read", lambda self, rows=None: reads.append(self.name) or read(self, rows)
    )
    # shape-level errors come from the stored shapes, before any layer is read
    with pytest.raises(ShapeError, match="layer 'logits'"):
        activation_statistics(lazy, top_k=4)
    with pytest.raises(LabelError):
        neural_collapse(lazy, labels[:-1])
    assert reads == []
    # a plain HDF5 group written by another tool may hold NaN: found when the layer is read
    import h5py

    with h5py.File(tmp_path / "nan.h5", "w") as f:
        f["conv"] = layers["conv"]
        f["fc"] = np.where(np.arange(20) == 5, np.nan, layers["fc"])
    with pytest.raises(NonFiniteError, match="layer 'fc' contains NaN at index \\(0, 5\\)"):
        participation_ratio(activationdata.Activations.from_hdf5(tmp_path / "nan.h5", key="/"))


def test_haxby_statistics_table(haxby_betas):
    X, labels = haxby_betas
    table = activation_statistics({"vt": X}, labels, contrast=("face", "house"))
    row = table.iloc[0]
    assert row.n_units == 530 and row.n_stimuli == 96
    assert 1 < row.participation_ratio < row.effective_rank <= 95  # centred rank <= n_stimuli - 1
    assert 0 < row.nc1 < np.inf and 0 < row.within_between < np.inf
    assert row.n_selective >= 1 and row.max_t > 4


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def no_work(monkeypatch):
    """Fail if any statistic starts computing: errors must come before the work."""

    def boom(*args, **kwargs):
        raise AssertionError("work started before the input was validated")

    for name in ("_spectrum", "_collapse", "_selectivity", "_massive", "_fraction_nonzero", "_top_k_mass"):
        monkeypatch.setattr(st, name, boom)


def test_bad_inputs_raise_before_work(rng, no_work):
    X = rng.standard_normal((10, 4))
    labels = np.repeat([0, 1], 5)
    nan_layers = {"ok": X, "bad": X.copy()}
    nan_layers["bad"][3, 2] = np.nan
    with pytest.raises(NonFiniteError, match="NaN at index \\(3, 2\\)"):
        activation_statistics(nan_layers, labels)
    inf = X.copy()
    inf[0, 0] = np.inf
    with pytest.raises(NonFiniteError, match="Inf"):
        participation_ratio(inf)
    with pytest.raises(LabelError, match="9 entries but there are 10 stimuli"):
        neural_collapse(X, labels[:-1])
    with pytest.raises(LabelError, match="only 1 class"):
        activation_statistics(X, np.zeros(10))
    with pytest.raises(NonFiniteError):
        neural_collapse(X, np.append(labels[:-1], np.nan))
    with pytest.raises(ShapeError, match=r"k=5 is out of range.*n_units=4"):
        top_k_mass(X, 5)
    with pytest.raises(ShapeError, match="layer 'b'"):
        activation_statistics({"a": rng.standard_normal((10, 8)), "b": X}, top_k=6)
    with pytest.raises(ShapeError, match="positive integer"):
        top_k_mass(X, 1.5)
    with pytest.raises(ShapeError, match="different numbers of stimuli"):
        effective_rank({"a": X, "b": X[:5]})
    with pytest.raises(ShapeError, match="X.reshape"):
        effective_rank(X[:, 0])
    with pytest.raises(UnknownNameError, match="Available: 'a'"):
        activation_statistics({"a": X}, layers=["b"])
    with pytest.raises(EmptySelectionError):
        activation_statistics({})
    with pytest.raises(ShapeError, match=">= 0"):
        fraction_nonzero(X, -1)
    with pytest.raises(ShapeError, match="> 0"):
        massive_activations(X, ratio=0)


def test_bad_selectivity_inputs_raise_before_work(rng, no_work):
    X = rng.standard_normal((12, 4))
    labels = np.repeat(["a", "b", "c"], 4)
    with pytest.raises(UnknownNameError, match="class in positive"):
        unit_selectivity(X, labels, "face")
    with pytest.raises(UnknownNameError, match="class in negative"):
        unit_selectivity(X, labels, "a", "z")
    with pytest.raises(LabelError, match="both positive and negative"):
        unit_selectivity(X, labels, ["a", "b"], ["b", "c"])
    with pytest.raises(LabelError, match="at least 2"):
        unit_selectivity(X, np.append(labels[:-1], "d"), "d")
    with pytest.raises(UnknownNameError, match="alternative"):
        unit_selectivity(X, labels, "a", alternative="bigger")
    with pytest.raises(UnknownNameError, match="correction"):
        unit_selectivity(X, labels, "a", correction="bh")
    with pytest.raises(LabelError, match="needs positive"):
        unit_selectivity(X, labels, None, "b")
    with pytest.raises(LabelError, match="needs labels"):
        activation_statistics(X, contrast=("a", "b"))
    with pytest.raises(LabelError, match="pair"):
        activation_statistics(X, labels, contrast="a")
    with pytest.raises(LabelError, match="1-D"):
        neural_collapse(X, labels[:, None])
