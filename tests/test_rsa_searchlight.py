"""Searchlights: sphere and sensor-time neighbourhoods, RDMs and scores at every centre, parallel backends.

References: rsatoolbox 0.3.2's ``get_volume_searchlight`` / ``get_searchlight_RDMs``
/ ``evaluate_models_searchlight``, MNE's ``find_ch_adjacency``, and
:func:`neuroenc.rsa.compute.compute_rdm` on each searchlight's features.
"""

from __future__ import annotations

import contextlib
import io
import os
import tracemalloc
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")  # rsatoolbox's progress bars

import mne
import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from scipy.spatial.distance import cdist
from scipy.spatial.transform import Rotation

import neuroenc
from neuroenc.errors import (
    DataError,
    EmptySelectionError,
    LabelError,
    ModalityError,
    NonFiniteError,
    ShapeError,
    UnknownNameError,
)
from neuroenc.rsa.compute import compute_rdm
from neuroenc.rsa.neighbourhoods import SensorTimeNeighbourhoods, VolumeNeighbourhoods, sphere_offsets
from neuroenc.rsa.noise import prec_from_residuals
from neuroenc.rsa.rdms import RDMs
from neuroenc.rsa.searchlights import searchlight, sensor_searchlight, volume_searchlight


def blob_mask(shape=(11, 10, 9), seed=0, extra=0.2):
    """A ball plus scattered voxels: spheres of every size, some cut by the image border."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    centre = (np.array(shape) - 1)[:, None, None, None] / 2
    return (((grid - centre) ** 2).sum(0) < 20) | (rng.random(shape) < extra)


def rsatoolbox_spheres(mask, radius, threshold, truncate):
    from rsatoolbox.util.searchlight import get_volume_searchlight

    with contextlib.redirect_stdout(io.StringIO()):
        return get_volume_searchlight(mask, radius=radius, threshold=threshold, truncate_at_boundary=truncate)


def design(n_cond=6, n_runs=4, n_features=100, seed=0):
    rng = np.random.default_rng(seed)
    cond = np.tile(np.arange(n_cond), n_runs)
    runs = np.repeat(np.arange(n_runs), n_cond)
    effects = rng.standard_normal((n_cond, n_features))
    X = effects[cond] + rng.standard_normal((len(cond), n_features))
    return X, cond, runs


# ----------------------------------------------------------------------
# sphere membership
@pytest.mark.parametrize("radius", [1, 1.5, 2, 3])
@pytest.mark.parametrize("threshold", [1.0, 0.6, 0.0])
def test_spheres_equal_rsatoolbox_isotropic_and_rotated(radius, threshold):
    mask = blob_mask()
    flat = np.flatnonzero(mask.ravel())
    # truncate_at_boundary=False chooses rsatoolbox's centres by threshold, True gives mask-only members
    centres, _ = rsatoolbox_spheres(mask, radius, threshold, truncate=False)
    _, members = rsatoolbox_spheres(mask, radius, 0.0, truncate=True)
    members = dict(zip(np.flatnonzero(mask.ravel()), members))
    rotation = np.eye(4)
    rotation[:3, :3] = Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix()
    shift = np.eye(4)
    shift[:3, 3] = [-90.0, 12.5, 7.0]
    for voxel in (1.0, 2.5):  # mm; the radius in mm is rsatoolbox's radius in voxels times the voxel size
        for affine in (np.diag([voxel, voxel, voxel, 1.0]), shift @ rotation @ np.diag([voxel, voxel, voxel, 1.0])):
            nb = VolumeNeighbourhoods(mask, affine, radius=radius * voxel, threshold=threshold)
            assert np.array_equal(flat[nb.centres], centres)
            assert nb.n_features == mask.sum()
            for c in range(0, nb.n_centres, 7):
                got = flat[nb.members_of(c)]
                assert np.array_equal(got, np.sort(members[flat[nb.centres[c]]]))
                assert nb.sizes[c] == len(got)


def test_truncated_spheres_keep_every_centre_like_rsatoolbox_truncation():
    mask = blob_mask(seed=3, extra=0.4)
    centres, members = rsatoolbox_spheres(mask, 2, 0.9, truncate=True)  # truncation makes the threshold moot
    nb = VolumeNeighbourhoods(mask, np.eye(4), radius=2, threshold=0.0)
    flat = np.flatnonzero(mask.ravel())
    assert np.array_equal(flat[nb.centres], centres)
    rows = nb.members(np.arange(nb.n_centres))
    for c, ref in enumerate(members):
        assert np.array_equal(flat[np.sort(rows[c][rows[c] >= 0])], np.sort(ref))


@pytest.mark.parametrize("zooms", [(3.1, 3.75, 3.75), (2.0, 2.0, 4.0), (1.5, 3.0, 2.0)])
def test_anisotropic_spheres_are_world_distance_balls(zooms):
    mask = blob_mask(seed=1)
    affine = np.diag(list(zooms) + [1.0])
    affine[:3, 3] = [60.45, -35.6, 0.0]
    radius = 7.6
    nb = VolumeNeighbourhoods(mask, affine, radius=radius)
    world = np.argwhere(mask) @ affine[:3, :3].T + affine[:3, 3]  # mask voxels in mm, feature order
    dist = cdist(world, world)
    assert nb.n_centres == mask.sum()  # threshold 0 keeps every voxel
    for c in range(nb.n_centres):
        assert np.array_equal(nb.members_of(c), np.flatnonzero(dist[nb.centres[c]] < radius))
    # an ellipsoid of voxels: the extent along each axis is radius / voxel size
    extent = np.abs(sphere_offsets(affine, radius)).max(0)
    assert np.array_equal(extent, np.floor(radius / np.array(zooms) - 1e-12).astype(int))


def test_haxby_spheres_follow_its_anisotropic_affine(haxby_bd):
    nb = VolumeNeighbourhoods(haxby_bd.mask, haxby_bd.affine, radius=8.0)
    assert nb.n_centres == haxby_bd.n_features == 530
    # one slice, voxels of 3.1 x 3.75 mm in-plane: 2 voxels along x, 2 along y fit in 8 mm
    assert set(map(tuple, nb.offsets[:, :2])) >= {(2, 0), (0, 2), (1, 1)}
    assert not any(abs(o[0]) > 2 or abs(o[1]) > 2 for o in nb.offsets)
    ijk = haxby_bd.features[["i", "j", "k"]].to_numpy()
    world = ijk @ haxby_bd.affine[:3, :3].T
    c = 200
    ref = np.flatnonzero(np.linalg.norm(world - world[c], axis=1) < 8.0)
    assert np.array_equal(nb.members_of(c), ref)


def test_volume_neighbourhoods_bad_input():
    mask = blob_mask()
    with pytest.raises(ShapeError, match="radius"):
        VolumeNeighbourhoods(mask, np.eye(4), radius=0)
    with pytest.raises(ShapeError, match="threshold"):
        VolumeNeighbourhoods(mask, np.eye(4), radius=2, threshold=1.5)
    with pytest.raises(ShapeError, match="affine"):
        VolumeNeighbourhoods(mask, None, radius=2)
    with pytest.raises(ShapeError, match="4x4"):
        VolumeNeighbourhoods(mask, np.eye(3), radius=2)
    with pytest.raises(ShapeError, match="singular"):
        VolumeNeighbourhoods(mask, np.diag([1.0, 0.0, 1.0, 1.0]), radius=2)
    with pytest.raises(EmptySelectionError):
        VolumeNeighbourhoods(np.zeros((4, 4, 4), bool), np.eye(4), radius=2)
    with pytest.raises(ShapeError, match="expected 3"):
        VolumeNeighbourhoods(mask[0], np.eye(4), radius=2)
    with pytest.raises(EmptySelectionError, match="fraction"):
        VolumeNeighbourhoods(np.random.default_rng(0).random((8, 8, 8)) < 0.3, np.eye(4), radius=3, threshold=1.0)
    nb = VolumeNeighbourhoods(mask, np.eye(4), radius=2)
    with pytest.raises(ShapeError, match="Centre numbers"):
        nb.members([nb.n_centres])


# ----------------------------------------------------------------------
# sensor x time neighbourhoods
def find_adjacency(info):
    with mne.utils.use_log_level("error"):
        return mne.channels.find_ch_adjacency(info, "eeg")


def test_sensor_neighbourhoods_equal_mne_adjacency(eeg_4class):
    data, info = eeg_4class
    adjacency, names = find_adjacency(info)
    assert list(names) == info["ch_names"]
    nb = SensorTimeNeighbourhoods(adjacency, data.n_times, half_window=3, step=5)
    dense = adjacency.toarray().astype(bool)
    for c in range(nb.n_channels):
        assert np.array_equal(nb.neighbours(c), np.flatnonzero(dense[c] | (np.arange(nb.n_channels) == c)))
    # members of centre (channel, time): neighbours x window, as features c * n_times + t
    c, i = 17, 4
    t = nb.centre_samples[i]
    got = nb.members_of(c * nb.n_centre_times + i)
    ref = np.sort((nb.neighbours(c)[:, None] * data.n_times + np.arange(t - 3, t + 4)[None]).ravel())
    assert np.array_equal(got, ref)
    assert nb.sizes[c * nb.n_centre_times + i] == len(ref)
    assert nb.centre_samples[0] == 3 and nb.centre_samples[-1] <= data.n_times - 4
    assert np.all(np.diff(nb.centre_samples) == 5)


def test_sensor_neighbourhoods_bad_input():
    adj = np.eye(4)
    with pytest.raises(ShapeError, match="square"):
        SensorTimeNeighbourhoods(np.ones((3, 4)), 10)
    with pytest.raises(ShapeError, match="does not fit"):
        SensorTimeNeighbourhoods(adj, 10, half_window=5)
    with pytest.raises(ShapeError, match="step"):
        SensorTimeNeighbourhoods(adj, 10, step=0)
    with pytest.raises(ShapeError, match="integer"):
        SensorTimeNeighbourhoods(adj, 10, half_window=1.5)


# ----------------------------------------------------------------------
# RDMs at every centre equal compute_rdm on the centre's features
@pytest.mark.parametrize(
    "method,noise",
    [
        ("correlation", None),
        ("euclidean", None),
        ("sqeuclidean", None),
        ("cosine", None),
        ("mahalanobis", "shrinkage_diag"),
        ("crossnobis", None),
        ("crossnobis", "shrinkage_diag"),
        ("crossnobis", "shrinkage_eye"),
        ("crossnobis", "diag"),
        ("poisson", None),
        ("poisson_cv", None),
    ],
)
def test_searchlight_rdms_equal_compute_rdm(method, noise):
    mask = blob_mask(shape=(8, 9, 7), seed=2, extra=0.1)
    X, cond, runs = design(n_features=int(mask.sum()), seed=5)
    if method.startswith("poisson"):
        X = np.random.default_rng(5).poisson(3.0, X.shape).astype(float)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    res = volume_searchlight(
        X,
        mask=mask,
        affine=affine,
        radius=4.5,
        conditions=cond,
        folds=runs,
        method=method,
        noise=noise,
        n_jobs=2,
        chunk_size=13,
    )
    nb = res.neighbourhoods
    assert res.rdms.n_rdms == nb.n_centres and list(res.rdms.metadata["centre"]) == list(range(nb.n_centres))
    assert np.unique(nb.sizes).size > 5  # spheres of many sizes, grouped by size in the chunks
    for c in range(0, nb.n_centres, 11):
        ref = compute_rdm(X[:, nb.members_of(c)], method, conditions=cond, folds=runs, noise=noise).vectors[0]
        np.testing.assert_allclose(res.rdms.vectors[c], ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())


def test_noise_from_residual_arrays_is_estimated_per_sphere():
    mask = blob_mask(shape=(7, 7, 7), seed=4, extra=0.0)
    X, cond, runs = design(n_features=int(mask.sum()), seed=6)
    residuals = np.random.default_rng(7).standard_normal((50, X.shape[1])) @ np.diag(np.linspace(0.5, 2, X.shape[1]))
    res = volume_searchlight(
        X,
        mask=mask,
        affine=np.eye(4),
        radius=2.0,
        conditions=cond,
        folds=runs,
        method="crossnobis",
        noise=residuals,
        noise_method="shrinkage_eye",
        noise_dof=45,
    )
    nb = res.neighbourhoods
    for c in range(0, nb.n_centres, 9):
        m = nb.members_of(c)
        prec = prec_from_residuals(residuals[:, m], dof=45, method="shrinkage_eye")
        ref = compute_rdm(X[:, m], "crossnobis", conditions=cond, folds=runs, noise=prec).vectors[0]
        np.testing.assert_allclose(res.rdms.vectors[c], ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())


def test_scores_equal_rsatoolbox_evaluate_models_searchlight():
    from rsatoolbox.inference import eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs as RtRDMs
    from rsatoolbox.util.searchlight import evaluate_models_searchlight, get_searchlight_RDMs

    mask = blob_mask(shape=(8, 9, 7), seed=0, extra=0.0)
    flat = np.flatnonzero(mask.ravel())
    X, cond, _ = design(n_cond=6, n_runs=3, n_features=int(mask.sum()), seed=1)
    volume = np.zeros((X.shape[0], mask.size))
    volume[:, flat] = X
    centres, members = rsatoolbox_spheres(mask, 2, 1.0, truncate=False)
    models = np.random.default_rng(2).random((2, 15))
    rt_models = [ModelFixed(f"m{i}", RtRDMs(models[i][None])) for i in range(2)]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sl = get_searchlight_RDMs(volume, centres, members, cond, method="correlation", verbose=False)
        evals = evaluate_models_searchlight(sl, rt_models, eval_fixed, method="corr", n_jobs=1)
    ref = np.array([e.evaluations[0, :, 0] for e in evals]).T

    named = RDMs(models, metadata={"name": ["m0", "m1"]})
    res = volume_searchlight(
        X,
        named,
        radius=4.0,
        mask=mask,
        affine=np.diag([2.0, 2.0, 2.0, 1.0]),
        threshold=1.0,
        conditions=cond,
        comparison="corr",
        return_rdms=True,
    )
    assert np.array_equal(flat[res.neighbourhoods.centres], centres)
    np.testing.assert_allclose(res.rdms.vectors, sl.dissimilarities, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.scores, ref, rtol=1e-10, atol=1e-12)
    assert res.model_names == ["m0", "m1"] and res.comparison == "pearson"


def test_models_are_aligned_to_the_data_conditions():
    mask = blob_mask(shape=(6, 6, 6), seed=0, extra=0.0)
    X, cond, _ = design(n_cond=4, n_runs=2, n_features=int(mask.sum()))
    labels = np.array(["d", "a", "c", "b"])[cond]
    model = np.random.default_rng(0).random((4, 4))
    model = model + model.T
    np.fill_diagonal(model, 0)
    order = np.argsort(["d", "a", "c", "b"])  # the data's sorted conditions a, b, c, d
    kw = dict(radius=2.0, mask=mask, affine=np.eye(4), conditions=labels)
    shuffled = volume_searchlight(X, RDMs(model, conditions=["d", "a", "c", "b"]), **kw)
    sorted_ = volume_searchlight(X, model[np.ix_(order, order)], **kw)
    np.testing.assert_array_equal(shuffled.scores, sorted_.scores)
    assert list(shuffled.conditions) == ["a", "b", "c", "d"]
    with pytest.raises(LabelError, match="differ"):
        volume_searchlight(X, RDMs(model, conditions=["a", "b", "c", "x"]), **kw)
    with pytest.raises(ShapeError, match="3 conditions"):
        volume_searchlight(X, np.ones(3), **kw)


# ----------------------------------------------------------------------
# chunking, memory and parallel backends
def test_chunking_and_workers_do_not_change_results():
    mask = blob_mask(seed=6)
    X, cond, runs = design(n_features=int(mask.sum()), seed=8)
    models = np.random.default_rng(3).random((3, 15))
    kw = dict(
        radius=2.5,
        mask=mask,
        affine=np.eye(4),
        conditions=cond,
        folds=runs,
        method="crossnobis",
        noise="shrinkage_diag",
        comparison="spearman",
    )
    ref = volume_searchlight(X, models, n_jobs=1, chunk_size=10_000, **kw)
    for n_jobs, chunk in ((1, 1), (2, 7), (2, None)):
        other = volume_searchlight(X, models, n_jobs=n_jobs, chunk_size=chunk, **kw)
        np.testing.assert_allclose(other.scores, ref.scores, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", ["loky", "dask", "joblib_config"])
def test_process_and_dask_backends_agree_with_threads(backend):
    mask = blob_mask(shape=(8, 8, 8), seed=6)
    X, cond, runs = design(n_features=int(mask.sum()), seed=9)
    model = np.random.default_rng(4).random(15)
    kw = dict(
        radius=2.0,
        mask=mask,
        affine=np.eye(4),
        conditions=cond,
        folds=runs,
        method="crossnobis",
        noise="shrinkage_diag",
        comparison="pearson",
        chunk_size=40,
        n_jobs=2,
    )
    ref = volume_searchlight(X, model, backend="threads", **kw)
    if backend == "dask":
        from distributed import Client

        with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
            assert client.status == "running"
            got = volume_searchlight(X, model, backend="dask", **kw)
    elif backend == "joblib_config":  # backend=None: the caller's joblib configuration, its n_jobs
        import joblib

        with joblib.parallel_config(backend="loky", n_jobs=2):
            got = volume_searchlight(X, model, backend=None, **{**kw, "n_jobs": None})
    else:
        got = volume_searchlight(X, model, backend=backend, **kw)
    np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-12, atol=1e-14)


def test_dask_backend_without_a_client_says_how_to_make_one():
    mask = blob_mask(shape=(6, 6, 6), seed=0, extra=0.0)
    X, cond, _ = design(n_features=int(mask.sum()))
    with pytest.raises(DataError, match="Client"):
        volume_searchlight(
            X,
            np.ones(15),
            radius=2.0,
            mask=mask,
            affine=np.eye(4),
            conditions=cond,
            backend="dask",
            n_jobs=2,
            chunk_size=5,
        )


def test_peak_memory_does_not_grow_with_the_number_of_centres():
    mask = np.ones((14, 14, 14), bool)
    X, cond, runs = design(n_cond=8, n_runs=3, n_features=int(mask.sum()), seed=0)
    nb = VolumeNeighbourhoods(mask, np.eye(4), radius=2.0)
    kw = dict(conditions=cond, folds=runs, method="crossnobis", noise="shrinkage_diag", n_jobs=1, chunk_size=32)
    model = np.random.default_rng(0).random(28)
    whole = np.flatnonzero(nb.sizes == nb.sizes.max())  # spheres inside the volume, all of one size
    searchlight(X, nb.select(whole[:64]), model, **kw)  # imports and compilation outside the trace
    peaks = []
    for n in (64, 1024):
        few = nb.select(whole[:n])
        tracemalloc.start()
        searchlight(X, few, model, **kw)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # 16x the centres: only the (n_models x n_centres) scores and size lists grow
    assert peaks[1] < 1.2 * peaks[0] + 1024 * 64


# ----------------------------------------------------------------------
# outputs
def test_nifti_output_has_the_mask_affine_and_one_volume_per_model():
    mask = blob_mask(shape=(7, 8, 9), seed=0)
    X, cond, _ = design(n_features=int(mask.sum()))
    affine = np.array([[-2.0, 0, 0, 90], [0, 2.5, 0, -126], [0, 0, 3.0, -72], [0, 0, 0, 1]])
    models = RDMs(np.random.default_rng(0).random((2, 15)), metadata={"model": ["a", "b"]})
    res = volume_searchlight(X, models, radius=5.0, mask=mask, affine=affine, conditions=cond, threshold=0.5)
    img = res.to_nifti()
    assert img.shape == mask.shape + (2,)
    np.testing.assert_array_equal(img.affine, affine)
    vol = np.asarray(img.dataobj)
    i, j, k = res.neighbourhoods.centre_ijk.T
    np.testing.assert_array_equal(vol[i, j, k, :], res.scores.T)
    assert np.isnan(vol[~mask]).all()
    assert res.neighbourhoods.n_centres < mask.sum()  # the threshold dropped border voxels: NaN there too
    assert np.isnan(vol[..., 0]).sum() == mask.size - res.neighbourhoods.n_centres
    np.testing.assert_array_equal(res.maps, np.moveaxis(vol, -1, 0))
    assert np.asarray(res.to_nifti(fill=0.0).dataobj)[~mask].max() == 0
    with pytest.raises(ModalityError):
        res.to_evoked()


def test_mask_as_image_or_file_gives_the_same_spheres(tmp_path):
    import nibabel

    mask = blob_mask(seed=2)
    affine = np.diag([2.0, 3.0, 2.5, 1.0])
    img = nibabel.Nifti1Image(mask.astype(np.uint8), affine)
    img.to_filename(tmp_path / "mask.nii.gz")
    ref = VolumeNeighbourhoods(mask, affine, radius=5.0)
    for source in (img, tmp_path / "mask.nii.gz", str(tmp_path / "mask.nii.gz")):
        nb = VolumeNeighbourhoods(source, radius=5.0)
        np.testing.assert_array_equal(nb.affine, affine)
        np.testing.assert_array_equal(nb.sizes, ref.sizes)
        np.testing.assert_array_equal(nb.members(np.arange(20)), ref.members(np.arange(20)))
    from neuroenc.errors import MissingFileError

    with pytest.raises(MissingFileError):
        VolumeNeighbourhoods(tmp_path / "missing.nii.gz", radius=5.0)


def test_braindata_input_uses_its_mask_and_affine():
    mask = blob_mask(shape=(6, 7, 5), seed=1)
    X, cond, runs = design(n_features=int(mask.sum()))
    bd = neuroenc.BrainData(
        X, pd.DataFrame({"condition": cond, "run": runs}), "fmri", affine=np.diag([3.0, 3, 3, 1]), mask=mask
    )
    model = np.random.default_rng(0).random(15)
    from_bd = volume_searchlight(bd, model, radius=6.0, method="crossnobis")  # folds: the run column
    from_array = volume_searchlight(
        X, model, radius=6.0, mask=mask, affine=bd.affine, conditions=cond, folds=runs, method="crossnobis"
    )
    np.testing.assert_array_equal(from_bd.scores, from_array.scores)
    np.testing.assert_array_equal(np.asarray(from_bd.to_nifti().dataobj)[mask][:, 0], from_bd.scores[0])


# ----------------------------------------------------------------------
# bad input: clear errors before any work
def test_bad_input_is_rejected_before_work():
    mask = blob_mask(shape=(6, 6, 6), seed=0, extra=0.0)
    X, cond, runs = design(n_features=int(mask.sum()))
    model = np.ones(15)
    kw = dict(radius=2.0, mask=mask, affine=np.eye(4), conditions=cond)
    with pytest.raises(UnknownNameError, match="RDM method"):
        volume_searchlight(X, model, method="manhattan", **kw)
    with pytest.raises(UnknownNameError, match="comparison"):
        volume_searchlight(X, model, comparison="dot", **kw)
    with pytest.raises(UnknownNameError, match="backend"):
        volume_searchlight(X, model, backend="mpi", **kw)
    with pytest.raises(UnknownNameError, match="noise estimation"):
        volume_searchlight(X, model, method="crossnobis", folds=runs, noise="ledoit", **kw)
    bad = X.copy()
    bad[3, 5] = np.nan
    with pytest.raises(NonFiniteError, match="NaN"):
        volume_searchlight(bad, model, **kw)
    with pytest.raises(LabelError, match="conditions"):
        volume_searchlight(X, model, **{**kw, "conditions": cond[:-1]})
    with pytest.raises(ShapeError, match="features"):
        volume_searchlight(X[:, :-1], model, **kw)
    with pytest.raises(ShapeError, match="mask"):
        volume_searchlight(X, model, radius=2.0, conditions=cond)
    with pytest.raises(DataError, match="noise"):
        volume_searchlight(X, model, method="correlation", noise="shrinkage_diag", **kw)
    with pytest.raises(ShapeError, match="residuals"):
        volume_searchlight(X, model, method="crossnobis", folds=runs, noise=np.ones((10, 3)), **kw)
    with pytest.raises(ShapeError, match="noise_dof"):
        volume_searchlight(X, model, method="crossnobis", folds=runs, noise="diag", noise_dof=0, **kw)
    with pytest.raises(LabelError, match="fold"):
        volume_searchlight(X, model, method="crossnobis", folds=np.zeros(len(cond)), **kw)
    with pytest.raises(LabelError, match="no observation in fold"):
        volume_searchlight(X, model, method="crossnobis", folds=np.where(cond == 0, 0, runs), **kw)
    with pytest.raises(ShapeError, match="chunk_size"):
        volume_searchlight(X, model, chunk_size=0, **kw)
    with pytest.raises(ModalityError, match="mask"):
        volume_searchlight(neuroenc.BrainData(X, cond, "fmri"), model, radius=2.0)
    with pytest.raises(ShapeError, match="Neighbourhoods"):
        searchlight(X, "sphere", model, conditions=cond)


# ----------------------------------------------------------------------
# real data
@pytest.fixture(scope="module")
def haxby_bd(haxby_dir):
    from neuroenc.datasets.local import load_haxby

    return load_haxby("betas", data_dir=haxby_dir.parent)


def test_haxby_searchlight_finds_the_category_structure(haxby_bd):
    conditions = np.unique(haxby_bd.conditions)
    animate = np.isin(conditions, ["face", "cat"])
    animacy = (animate[:, None] != animate[None]).astype(float)
    faces = np.isin(conditions, ["face"])
    face_model = (faces[:, None] != faces[None]).astype(float)
    models = RDMs(np.stack([animacy, face_model]), conditions=conditions, metadata={"name": ["animacy", "face"]})
    res = volume_searchlight(
        haxby_bd,
        models,
        radius=8.0,
        method="crossnobis",
        noise="shrinkage_diag",
        comparison="spearman",
        return_rdms=True,
    )
    nb = res.neighbourhoods
    assert res.scores.shape == (2, 530) and np.isfinite(res.scores).all()
    # crossnobis distances between categories are positive on average in ventral temporal cortex
    assert np.mean(res.rdms.vectors) > 0
    # some spheres carry the animate/inanimate split
    assert res.scores[0].max() > 0.5
    for c in (0, 137, 529):
        ref = compute_rdm(haxby_bd.pick_features(list(nb.members_of(c))), "crossnobis", noise="shrinkage_diag")
        np.testing.assert_allclose(res.rdms.vectors[c], ref.vectors[0], rtol=1e-9, atol=1e-12)
    img = res.to_nifti()
    assert img.shape == (40, 20, 1, 2)
    np.testing.assert_array_equal(img.affine, haxby_bd.affine)
    np.testing.assert_array_equal(np.asarray(img.dataobj)[haxby_bd.mask], res.scores.T)


@pytest.fixture(scope="module")
def eeg_4class(eegbci_dir):
    """PhysioNet imagery: left/right fist and both fists/feet (4 conditions), montage set; fold = run order."""
    from neuroenc.datasets.local import load_physionet_mi

    parts = [
        load_physionet_mi(task=t, data_dir=eegbci_dir.parents[1], l_freq=8.0, h_freq=30.0, tmin=0.0, tmax=2.0)
        for t in ("imagery_lr", "imagery_ff")
    ]
    data = neuroenc.concatenate(parts)
    data.obs["fold"] = data.obs["run"].map({4: 0, 6: 0, 8: 1, 10: 1, 12: 2, 14: 2})
    info = data.info.copy()
    mne.datasets.eegbci.standardize(info)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the montage's new name
        info.set_montage("standard_1005")
    return data, info


def test_physionet_sensor_time_searchlight(eeg_4class):
    data, info = eeg_4class
    conditions = np.unique(data.conditions)  # both_feet, both_fists, left_fist, right_fist
    feet = conditions == "both_feet"
    models = RDMs(
        (feet[:, None] != feet[None]).astype(float)[None], conditions=conditions, metadata={"name": ["feet vs hands"]}
    )
    res = sensor_searchlight(
        data,
        models,
        info=info,
        time_radius=0.05,
        time_step=16,
        method="crossnobis",
        folds="fold",
        comparison="pearson",
        return_rdms=True,
        n_jobs=2,
    )
    nb = res.neighbourhoods
    assert nb.half_window == 8  # 0.05 s at 160 Hz
    assert res.maps.shape == (1, 64, nb.n_centre_times)
    np.testing.assert_allclose(res.times, data.times[nb.centre_samples])
    # the RDM of (channel, time) equals compute_rdm on the neighbours x window of the epochs
    adjacency, _ = find_adjacency(info)
    for ch, ti in ((9, 3), (40, 0)):
        t = nb.centre_samples[ti]
        chans = np.flatnonzero(adjacency[[ch]].toarray()[0])
        X = data.data[:, chans, t - 8 : t + 9].reshape(len(data.obs), -1)
        ref = compute_rdm(X, "crossnobis", conditions=data.conditions, folds=data.obs["fold"].to_numpy())
        np.testing.assert_allclose(
            res.rdms.vectors[ch * nb.n_centre_times + ti],
            ref.vectors[0],
            rtol=1e-9,
            atol=1e-12 * np.abs(ref.vectors).max(),
        )
    meta = res.rdms.metadata.iloc[9 * nb.n_centre_times + 3]
    assert meta["ch_name"] == info["ch_names"][9] and meta["time"] == res.times[3]
    bd = res.to_braindata()
    assert bd.feature_names == info["ch_names"] and bd.obs["model"].tolist() == ["feet vs hands"]
    np.testing.assert_allclose(bd.times, res.times)
    evoked = res.to_evoked("feet vs hands")
    assert evoked.ch_names == info["ch_names"] and evoked.comment == "feet vs hands"
    np.testing.assert_allclose(evoked.times, res.times, atol=1e-9)
    np.testing.assert_array_equal(evoked.data, res.maps[0])
    with pytest.raises(ModalityError):
        res.to_nifti()


def test_sensor_searchlight_on_arrays_with_a_given_adjacency():
    rng = np.random.default_rng(0)
    n_ch, n_times = 6, 30
    cond = np.repeat(np.arange(4), 5)
    X = rng.standard_normal((20, n_ch, n_times)) + rng.standard_normal((4, n_ch, n_times))[cond]
    ring = np.eye(n_ch, k=1) + np.eye(n_ch, k=-1)  # each channel touches the next and the previous one
    ring[0, -1] = ring[-1, 0] = 1
    times = -0.1 + np.arange(n_times) / 50.0
    res = sensor_searchlight(X, None, adjacency=ring, times=times, time_radius=0.04, time_step=3, conditions=cond)
    nb = res.neighbourhoods
    assert nb.half_window == 2 and res.rdms.n_rdms == n_ch * nb.n_centre_times
    # centre times every 3 samples (0.06 s) counted from time 0; the first whole window is at -0.06 s
    np.testing.assert_allclose(res.times[:3], [-0.06, 0.0, 0.06], atol=1e-12)
    c, i = 0, 1
    t = nb.centre_samples[i]
    ref = compute_rdm(X[:, [0, 1, 5], t - 2 : t + 3].reshape(20, -1), "correlation", conditions=cond)
    np.testing.assert_allclose(res.rdms.vectors[c * nb.n_centre_times + i], ref.vectors[0], rtol=1e-12)
    with pytest.raises(DataError, match="no model"):
        res.to_braindata()  # without models there are only RDMs
    scored = sensor_searchlight(X, np.ones(6), adjacency=ring, times=times, time_radius=0.04, conditions=cond)
    bd = scored.to_braindata()
    assert bd.feature_names == [f"ch{k}" for k in range(n_ch)]
    assert bd.data.shape == (1, n_ch, scored.neighbourhoods.n_centre_times)
    with pytest.raises(ModalityError, match="Info"):
        scored.to_evoked()


def test_sensor_searchlight_bad_input(eeg_4class):
    data, info = eeg_4class
    with pytest.raises(LabelError, match="montage"):
        sensor_searchlight(data, None, time_radius=0.0)  # the raw PhysioNet info has no positions
    with pytest.raises(ShapeError, match="time_radius"):
        sensor_searchlight(data, None, info=info, time_radius=-1.0)
    with pytest.raises(ShapeError, match="adjacency"):
        sensor_searchlight(data, None, adjacency=scipy.sparse.eye_array(10))
    with pytest.raises(ShapeError, match="adjacency="):
        sensor_searchlight(data.data, None, conditions=data.conditions)
    with pytest.raises(ShapeError, match="time axis"):
        sensor_searchlight(neuroenc.BrainData(data.data[:, :, 0], data.obs, "eeg"), None, adjacency=np.eye(64))
