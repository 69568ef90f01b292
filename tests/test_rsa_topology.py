"""Topological RSA transforms (neuroenc.rsa.topology) against rsatoolbox 0.3.2 and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import loadmat
from scipy.sparse.csgraph import csgraph_from_dense, shortest_path
from scipy.spatial.distance import pdist, squareform

from neuroenc.errors import EmptySelectionError, NonFiniteError, ShapeError, UnknownNameError
from neuroenc.rsa.comparisons import compare
from neuroenc.rsa.rdms import RDMs
from neuroenc.rsa.topology import geodesic, geotopological, geotopological_thresholds

rsa_transform = pytest.importorskip("rsatoolbox.rdm.transform")


# ----------------------------------------------------------------------
# data
IMAGES = [f"img{i:02d}" for i in range(92)]


@pytest.fixture(scope="module")
def hit(rsa92_dir) -> RDMs:
    """Human IT fMRI RDMs of the 92 images: 4 subjects x 2 sessions."""
    brain = loadmat(rsa92_dir / "92_brainRDMs.mat")["RDMs"]
    mats = np.array([brain[0, s, k]["RDM"] for s in range(4) for k in range(2)], dtype=np.float64)
    meta = {"subject": np.repeat(["BE", "KO", "SN", "TI"], 2), "session": np.tile([1, 2], 4)}
    return RDMs(mats, conditions=IMAGES, method="correlation", metadata=meta)


@pytest.fixture(scope="module")
def models(rsa92_dir) -> RDMs:
    """The 8 model RDMs (two binary: animacy, FaceBodyManmadeNatobj)."""
    raw = loadmat(rsa92_dir / "92_modelRDMs.mat")["Models"][0]
    mats = np.array([np.asarray(m["RDM"], dtype=np.float64) for m in raw])
    return RDMs(mats, conditions=IMAGES, metadata={"model": [str(m["name"][0]) for m in raw]})


def random_rdms(seed: int, n_rdms: int = 6, n: int = 20, dim: int = 8) -> np.ndarray:
    """Euclidean RDMs of random patterns (distances around 4, so quantiles exceed 1)."""
    rng = np.random.default_rng(seed)
    return np.array([pdist(rng.standard_normal((n, dim)) * rng.uniform(0.5, 2.0)) for _ in range(n_rdms)])


def rsatoolbox_gt(vectors: np.ndarray, low: float, up: float) -> np.ndarray:
    from rsatoolbox.rdm import RDMs as RsaRDMs

    # rsatoolbox transforms modify their input in place: give it a copy
    return rsa_transform.geotopological_transform(RsaRDMs(vectors.copy()), low, up).get_vectors()


def rsatoolbox_geodesic(vectors: np.ndarray) -> np.ndarray:
    from rsatoolbox.rdm import RDMs as RsaRDMs

    return rsa_transform.geodesic_transform(RsaRDMs(vectors.copy())).get_vectors()


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


# ----------------------------------------------------------------------
# geo-topological transform: parity with rsatoolbox (pooled quantiles)
@pytest.mark.parametrize("low, up", [(0.1, 0.9), (0.0, 1.0), (0.3, 0.95), (0.6, 0.9), (0.9, 0.9)])
def test_pooled_gt_matches_rsatoolbox_on_hit(hit, low, up):
    # rsatoolbox is exact when the upper threshold value is >= 1 (see the re-clipping test)
    assert np.quantile(hit.vectors, up) >= 1.0
    ours = geotopological(hit, low, up, per_rdm=False)
    ref = rsatoolbox_gt(hit.vectors, low, up)
    assert relative_difference(ours.vectors, ref) < 1e-8
    np.testing.assert_array_equal(ours.vectors, ref)


@pytest.mark.parametrize("low, up", [(0.2, 0.8), (0.05, 0.5)])
def test_pooled_gt_matches_rsatoolbox_on_random_rdms(low, up):
    V = random_rdms(0)
    assert np.quantile(V, low) > 0 and np.quantile(V, up) >= 1.0
    assert relative_difference(geotopological(V, low, up, per_rdm=False), rsatoolbox_gt(V, low, up)) < 1e-8


def test_pooled_gt_of_models_matches_rescaled_rsatoolbox(models):
    # the model RDMs are small (HMAX < 0.53), so rsatoolbox's re-clipping would
    # apply; the transform is scale invariant, so rsatoolbox on 100 x the RDMs
    # gives the defined transform
    ours = geotopological(models, 0.2, 0.8, per_rdm=False)
    ref = rsatoolbox_gt(100.0 * models.vectors, 0.2, 0.8)
    assert relative_difference(ours.vectors, ref) < 1e-8


def test_per_rdm_gt_matches_rsatoolbox_on_each_rdm(hit):
    low, up = 0.1, 0.95
    ours = geotopological(hit, low, up)
    for i in range(hit.n_rdms):
        assert np.quantile(hit.vectors[i], up) >= 1.0
        ref = rsatoolbox_gt(hit.vectors[i : i + 1], low, up)
        assert relative_difference(ours.vectors[i], ref[0]) < 1e-8


def test_rsatoolbox_reclips_values_above_an_upper_threshold_below_one(hit):
    """The one difference from rsatoolbox, characterised exactly.

    rsatoolbox sets ``d > t_u`` to 1 *after* rescaling the band, so rescaled
    values that exceed ``t_u`` (possible when ``t_u < 1``) become 1 as well.
    """
    low, up = 0.1, 0.5
    t_up = np.quantile(hit.vectors, up)
    assert t_up < 1.0
    ours = geotopological(hit, low, up, per_rdm=False).vectors
    ref = rsatoolbox_gt(hit.vectors, low, up)
    reclipped = ours > t_up
    np.testing.assert_array_equal(ref, np.where(reclipped, 1.0, ours))
    assert (ref != ours).mean() > 0.07  # a real difference: the top of the rescaled band


def test_rsatoolbox_remaps_values_below_a_negative_lower_threshold():
    """rsatoolbox's second difference: with ``t_l < 0`` (e.g. crossnobis) the
    values it has just set to 0 fall inside the band and are rescaled."""
    V = random_rdms(8) - 3.0
    low, up = 0.2, 0.9
    t_low, t_up = np.quantile(V, [low, up])
    assert t_low < 0.0 < 1.0 <= t_up
    ours = geotopological(V, low, up, per_rdm=False)
    ref = rsatoolbox_gt(V, low, up)
    np.testing.assert_array_equal(ref, np.where(V < t_low, -t_low / (t_up - t_low), ours))
    assert np.all(ours[V < t_low] == 0.0)


def test_per_rdm_and_pooled_thresholds(hit, models):
    th = geotopological_thresholds(hit, 0.1, 0.9)
    np.testing.assert_array_equal(th, np.quantile(hit.vectors, [0.1, 0.9], axis=1).T)
    pooled = geotopological_thresholds(hit, 0.1, 0.9, per_rdm=False)
    np.testing.assert_array_equal(pooled, np.tile(np.quantile(hit.vectors, [0.1, 0.9]), (8, 1)))
    # per RDM, an RDM's transform does not depend on the batch; pooled, it does
    both = RDMs.concatenate([hit[:1], models.select(model="HMAX")])
    np.testing.assert_array_equal(
        geotopological(both, 0.1, 0.9).vectors[0], geotopological(hit[:1], 0.1, 0.9).vectors[0]
    )
    pooled_hmax = geotopological(both, 0.1, 0.9, per_rdm=False).vectors[1]
    own_hmax = geotopological(both, 0.1, 0.9).vectors[1]
    assert (own_hmax == 1).mean() == pytest.approx(0.1, abs=0.01)
    assert pooled_hmax.max() < 0.5  # HMAX's small scale never reaches the pooled upper threshold


def test_gt_values_and_monotonicity(hit):
    out = geotopological(hit, 0.2, 0.7)
    th = geotopological_thresholds(hit, 0.2, 0.7)
    v = hit.vectors
    lo, hi = th[:, :1], th[:, 1:]
    assert np.all(out.vectors[v <= lo] == 0.0)
    assert np.all(out.vectors[v >= hi] == 1.0)
    band = (v > lo) & (v < hi)
    np.testing.assert_allclose(out.vectors[band], ((v - lo) / (hi - lo))[band], rtol=1e-15)
    for d, g in zip(v, out.vectors):  # monotone: the order of dissimilarities is kept (ties allowed)
        order = np.argsort(d, kind="stable")
        assert np.all(np.diff(g[order]) >= 0)


def test_gt_is_scale_invariant():
    V = random_rdms(1)
    np.testing.assert_allclose(geotopological(V, 0.1, 0.6), geotopological(V * 1e-3, 0.1, 0.6), atol=1e-12)


def test_gt_with_equal_thresholds_is_the_adjacency_step():
    d = np.array([0.1, 0.5, 0.2, 0.9, 0.3, 0.7])
    t = np.quantile(d, 0.5)
    np.testing.assert_array_equal(geotopological(d, 0.5, 0.5), (d > t).astype(float))
    # binary model RDM with most pairs at 1: both thresholds tie at 1 -> all 0
    binary = np.array([0.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(geotopological(binary, 0.1, 0.2), (binary > 0).astype(float))
    np.testing.assert_array_equal(geotopological(binary, 0.5, 0.9), np.zeros(6))


def test_constant_rdm_becomes_zero():
    out = geotopological(np.full((2, 6), 0.4), 0.1, 0.9)
    np.testing.assert_array_equal(out, 0.0)
    np.testing.assert_array_equal(geodesic(np.full(6, 0.4)), 0.0)


def test_gt_three_conditions_by_hand():
    # d = (1, 2, 3): quantiles 0.25 -> 1.5 and 0.75 -> 2.5
    np.testing.assert_allclose(geotopological([1.0, 2.0, 3.0], 0.25, 0.75), [0.0, 0.5, 1.0])


def test_gt_ignores_missing_pairs():
    V = random_rdms(2, n_rdms=2, n=8)
    V[0, [1, 7]] = np.nan
    out = geotopological(V, 0.1, 0.9)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(V))
    keep = ~np.isnan(V[0])
    # the thresholds come from the available pairs only
    lo, hi = np.quantile(V[0][keep], [0.1, 0.9])
    np.testing.assert_allclose(out[0][keep], np.clip((V[0][keep] - lo) / (hi - lo), 0, 1), rtol=1e-15)
    np.testing.assert_array_equal(out[1], geotopological(V[1], 0.1, 0.9))


# ----------------------------------------------------------------------
# geodesic transform: parity with rsatoolbox (zero_edges=False) and scipy
def test_geodesic_matches_rsatoolbox_on_hit(hit):
    ours = geodesic(hit, zero_edges=False)
    assert relative_difference(ours.vectors, rsatoolbox_geodesic(hit.vectors)) < 1e-8


@pytest.mark.parametrize("low, up", [(0.1, 0.9), (0.0, 0.95), (0.3, 0.9)])
def test_geodesic_of_pooled_gt_matches_rsatoolbox_pipeline(hit, low, up):
    ours = geodesic(geotopological(hit, low, up, per_rdm=False), zero_edges=False)
    ref = rsatoolbox_geodesic(rsatoolbox_gt(hit.vectors, low, up))
    assert np.isfinite(ref).all()
    assert relative_difference(ours.vectors, ref) < 1e-8


def test_geodesic_matches_rsatoolbox_on_random_rdms():
    V = random_rdms(3, n=30)
    assert relative_difference(geodesic(V, zero_edges=False), rsatoolbox_geodesic(V)) < 1e-8


def test_disconnected_graphs_follow_rsatoolbox_inf(hit):
    # only the pairs below the 3% quantile are edges: the graphs fall apart
    gt = geotopological(hit.vectors, 0.0, 0.03, per_rdm=False)
    ref = rsatoolbox_geodesic(gt)
    assert np.isinf(ref).any()
    ours = geodesic(gt, zero_edges=False)
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(ref))
    finite = np.isfinite(ref)
    assert relative_difference(ours[finite], ref[finite]) < 1e-8


def test_disconnected_policy_for_rdms(hit):
    gt = geotopological(hit, 0.0, 0.03)
    with pytest.raises(NonFiniteError, match="disconnected"):
        geodesic(gt)
    inf_pos = np.isinf(geodesic(gt.vectors))
    as_nan = geodesic(gt, disconnected="nan")
    np.testing.assert_array_equal(np.isnan(as_nan.vectors), inf_pos)
    far = geodesic(gt, disconnected=92)
    assert np.all(far.vectors[inf_pos] == 92) and far.vectors[~inf_pos].max() < 92
    assert (as_nan.metadata["geodesic_components"] > 1).all()
    beyond = geodesic(gt, disconnected="beyond")
    for v, cut in zip(beyond.vectors, inf_pos):
        assert np.all(v[cut] == v[~cut].max() + 1.0)
    # a finite value above the connected distances ranks like Inf
    np.testing.assert_allclose(compare(far, gt, "spearman"), compare(beyond, gt, "spearman"), rtol=1e-12)


def test_categorical_model_rdm_splits_into_its_categories(models):
    animacy = geotopological(models.select(model="animacy"), 0.1, 0.9)
    np.testing.assert_array_equal(animacy.vectors, models.select(model="animacy").vectors)  # already 0 / 1
    rgdm = geodesic(animacy, disconnected="beyond")
    assert rgdm.metadata["geodesic_components"][0] == 2  # animate and inanimate
    np.testing.assert_array_equal(rgdm.vectors, animacy.vectors)  # 0 within, 0 + 1 between
    # rsatoolbox's convention drops the zero-length edges too: no edge is left
    assert np.isinf(geodesic(animacy.vectors, zero_edges=False)).all()
    assert np.isinf(rsatoolbox_geodesic(animacy.vectors)).all()


def test_geodesic_default_matches_scipy_shortest_path(hit):
    gt = geotopological(hit, 0.1, 0.9)
    ours = geodesic(gt)
    for vec, out in zip(gt.vectors, ours.vectors):
        M = squareform(np.where(vec < 1.0, vec, np.inf), checks=False)  # GT output spans [0, 1] exactly
        np.fill_diagonal(M, 0.0)
        ref = shortest_path(csgraph_from_dense(M, null_value=np.inf), directed=False)
        assert relative_difference(out, squareform(ref, checks=False)) < 1e-12
    # zero-length edges matter: the two conventions differ substantially
    assert np.abs(ours.vectors - geodesic(gt, zero_edges=False).vectors).max() > 0.05


def test_geodesic_is_scale_invariant_and_threaded_consistently():
    V = random_rdms(4, n=40)
    np.testing.assert_allclose(geodesic(V, n_jobs=1), geodesic(V * 7.5, n_jobs=2), rtol=1e-12)


def test_geodesic_three_conditions_by_hand():
    np.testing.assert_allclose(geodesic([1.0, 3.0, 2.0]), [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(geodesic([1.0, 3.0, 2.0], zero_edges=False), [np.inf, np.inf, 0.5])


def test_geodesic_keeps_missing_pairs_missing():
    V = random_rdms(5, n_rdms=2, n=10)
    V[1, 3] = np.nan
    out = geodesic(V)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(V))


# ----------------------------------------------------------------------
# containers and layouts
def test_rdms_keep_conditions_metadata_and_record_the_transform(hit):
    before = hit.vectors.copy()
    gt = geotopological(hit, 0.1, 0.9)
    rgdm = geodesic(gt)
    for out in (gt, rgdm):
        assert isinstance(out, RDMs)
        np.testing.assert_array_equal(out.conditions, hit.conditions)
        np.testing.assert_array_equal(out.metadata["subject"], hit.metadata["subject"])
    assert gt.method == "geotopological(correlation, low=0.1, up=0.9, per_rdm=True)"
    assert rgdm.method == f"geodesic({gt.method}, zero_edges=True)"
    np.testing.assert_array_equal(gt.metadata[["gt_lower", "gt_upper"]], geotopological_thresholds(hit, 0.1, 0.9))
    assert (rgdm.metadata["geodesic_components"] == 1).all()
    np.testing.assert_array_equal(hit.vectors, before)  # unlike rsatoolbox, the input is not modified
    # selection and comparison work on the output as on any RDMs
    assert compare(rgdm.select(subject="BE"), gt, "pearson").shape == (2, 8)


@pytest.mark.parametrize("transform", [lambda x: geotopological(x, 0.1, 0.8), geodesic])
def test_array_layouts_round_trip(hit, transform):
    ref = transform(hit[:3]).vectors
    mats = hit[:3].matrices
    out = transform(mats)
    assert out.shape == mats.shape
    np.testing.assert_array_equal(out, RDMs(ref).matrices)
    np.testing.assert_array_equal(transform(hit.vectors[:3]), ref)
    np.testing.assert_array_equal(transform(hit.vectors[0]), ref[0])
    one = transform(mats[0])
    assert one.shape == (92, 92)
    np.testing.assert_array_equal(one, one.T)
    np.testing.assert_array_equal(np.diag(one), 0.0)
    np.testing.assert_array_equal(squareform(one, checks=False), ref[0])


# ----------------------------------------------------------------------
# bad input: clear errors before any work
@pytest.mark.parametrize(
    "low, up, match",
    [
        (0.9, 0.1, "must not exceed"),
        (-0.1, 0.5, ">= 0"),
        (0.1, 1.5, r"\[0, 1\]"),
        (np.nan, 0.5, "finite"),
        ("a", 1, "number"),
    ],
)
def test_bad_quantiles(low, up, match):
    with pytest.raises(ShapeError, match=match):
        geotopological(random_rdms(6), low, up)


@pytest.mark.parametrize("transform", [lambda x: geotopological(x, 0.1, 0.9), geodesic])
def test_bad_rdms(transform):
    with pytest.raises(ShapeError, match="triangle"):
        transform(np.ones(5))  # 5 is not n (n - 1) / 2
    with pytest.raises(NonFiniteError, match="Inf"):
        transform(np.array([0.1, np.inf, 0.3]))
    asym = np.array([[0.0, 1.0, 2.0], [1.5, 0.0, 1.0], [2.0, 1.0, 0.0]])
    with pytest.raises(ShapeError):
        transform(asym[None])
    with pytest.raises(ShapeError, match="dimension"):
        transform(np.zeros((2, 2, 3, 3)))
    with pytest.raises(EmptySelectionError, match="RDM 1"):
        transform(np.array([[0.1, 0.2, 0.3], [np.nan] * 3]))
    with pytest.raises(ShapeError):
        transform("not an rdm")


@pytest.mark.parametrize(
    "bad, error", [("max", UnknownNameError), (-1.0, ShapeError), (True, ShapeError), (None, ShapeError)]
)
def test_bad_disconnected_policy(bad, error):
    with pytest.raises(error):
        geodesic(random_rdms(7), disconnected=bad)
