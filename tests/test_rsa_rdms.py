"""The RDMs container: layout, selection, transforms, HDF5 and rsatoolbox round trips, errors."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import rsatoolbox
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.io import loadmat
from scipy.spatial.distance import pdist, squareform
from scipy.stats import rankdata

from neuroenc.errors import EmptySelectionError, LabelError, NonFiniteError, ShapeError, StoreError, UnknownNameError
from neuroenc.rsa import RDMs, to_matrices, to_vectors


def random_rdms(n_rdms=3, n_cond=6, seed=0):
    rng = np.random.default_rng(seed)
    vectors = np.stack([pdist(rng.standard_normal((n_cond, 4))) for _ in range(n_rdms)])
    return RDMs(
        vectors,
        conditions=[f"c{i}" for i in range(n_cond)],
        method="euclidean",
        metadata={"subject": list(range(1, n_rdms + 1)), "roi": "IT"},
    )


@given(st.integers(2, 12), st.integers(1, 4), st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_vector_layout_is_scipy_squareform(n_cond, n_rdms, seed):
    rng = np.random.default_rng(seed)
    vecs = rng.uniform(0.1, 2.0, (n_rdms, n_cond * (n_cond - 1) // 2))
    mats = to_matrices(vecs)
    for v, m in zip(vecs, mats):
        assert np.array_equal(m, squareform(v))
    assert np.array_equal(to_vectors(mats), vecs)
    rdms = RDMs(mats)
    assert np.array_equal(rdms.vectors, vecs) and rdms.n_conditions == n_cond and rdms.n_rdms == n_rdms


def test_inputs_in_every_shape_give_the_same_rdms():
    v = pdist(np.random.default_rng(1).standard_normal((5, 3)))
    for arg in (v, v[None], squareform(v), squareform(v)[None]):
        r = RDMs(arg)
        assert r.n_rdms == 1 and np.array_equal(r.vectors[0], v)
        assert list(r.conditions) == [0, 1, 2, 3, 4]


def test_real_92_image_rdms_round_trip_through_rsatoolbox(rsa92_dir):
    brain = loadmat(rsa92_dir / "92_brainRDMs.mat")["RDMs"]
    mats = np.stack([brain[0, s, k]["RDM"] for s in range(4) for k in range(2)]).astype(float)
    subjects = [str(brain[0, s, 0]["name"][0]).split("|")[1].strip() for s in range(4) for _ in range(2)]
    rdms = RDMs(mats, metadata={"subject": subjects, "session": [1, 2] * 4}, method="hIT fMRI")
    assert rdms.n_rdms == 8 and rdms.n_conditions == 92 and rdms.n_pairs == 92 * 91 // 2
    ref = rsatoolbox.rdm.RDMs(mats)
    assert np.array_equal(rdms.vectors, ref.get_vectors())
    assert np.array_equal(rdms.matrices, ref.get_matrices())
    back = RDMs.from_rsatoolbox(rdms.to_rsatoolbox())
    assert np.array_equal(back.vectors, rdms.vectors)
    assert list(back.metadata["subject"]) == subjects
    assert rdms.select(subject="BE").n_rdms == 2


def test_selection_by_index_metadata_and_query():
    r = random_rdms(n_rdms=4)
    assert np.array_equal(r[1].vectors, r.vectors[[1]])
    assert np.array_equal(r[[True, False, True, False]].vectors, r.vectors[[0, 2]])
    assert list(r.select(subject=[2, 4]).metadata["subject"]) == [2, 4]
    assert list(r.select("subject > 2").metadata["subject"]) == [3, 4]
    with pytest.raises(UnknownNameError, match="metadata column: 'session'"):
        r.select(session=1)
    with pytest.raises(EmptySelectionError):
        r.select(subject=9)


def test_subset_and_reorder_conditions_match_the_matrix_indexing():
    r = random_rdms()
    sub = r.subset_conditions(["c4", "c0", "c2"])
    idx = [4, 0, 2]
    assert np.array_equal(sub.matrices, r.matrices[:, idx][:, :, idx])
    assert list(sub.conditions) == ["c4", "c0", "c2"]
    with pytest.raises(UnknownNameError, match="Unknown condition: 'x'"):
        r.subset_conditions(["c0", "x"])
    with pytest.raises(ShapeError, match="at least 2 conditions"):
        r.subset_conditions(["c0"])


def test_rank_and_sqrt_transforms_match_scipy_and_keep_nan():
    r = random_rdms()
    v = r.vectors.copy()
    v[0, 3] = v[0, 5]  # a tie
    v[1, 2] = np.nan  # a missing pair
    r = RDMs(v, r.conditions)
    ranked = r.rank_transform()
    assert np.array_equal(ranked.vectors[0], rankdata(v[0]))
    ok = ~np.isnan(v[1])
    assert np.array_equal(ranked.vectors[1, ok], rankdata(v[1, ok])) and np.isnan(ranked.vectors[1, 2])
    neg = RDMs(np.array([[-0.5, 4.0, 9.0]]))
    assert np.array_equal(neg.sqrt_transform().vectors, [[0.0, 2.0, 3.0]])
    with pytest.raises(UnknownNameError, match="rank method"):
        r.rank_transform("best")


def test_hdf5_round_trip_is_exact(tmp_path):
    r = random_rdms(n_rdms=5, n_cond=30)
    r.vectors[2, 7] = np.nan
    path = tmp_path / "rdms.h5"
    r.to_hdf5(path, "sub-01/IT")
    back = RDMs.from_hdf5(path, "sub-01/IT")
    assert np.array_equal(back.vectors, r.vectors, equal_nan=True)
    assert list(back.conditions) == list(r.conditions) and back.method == r.method
    pd.testing.assert_frame_equal(back.metadata, r.metadata)
    with pytest.raises(StoreError, match="already exists"):
        r.to_hdf5(path, "sub-01/IT")
    with pytest.raises(StoreError, match="not a RDMs|No entry"):
        RDMs.from_hdf5(path, "sub-02")


def test_concatenate_checks_conditions():
    a, b = random_rdms(seed=1), random_rdms(seed=2)
    both = RDMs.concatenate([a, b])
    assert both.n_rdms == 6 and np.array_equal(both.vectors, np.vstack([a.vectors, b.vectors]))
    with pytest.raises(LabelError, match="other conditions"):
        RDMs.concatenate([a, a.subset_conditions(list(reversed(a.conditions)))])


def test_plots_draw_the_rdm_and_its_mds(tmp_path):
    import matplotlib.pyplot as plt

    r = random_rdms(n_cond=8)
    ax = r.plot(1)
    assert np.array_equal(ax.images[0].get_array(), r.matrices[1])
    xy = r.mds(0)
    embedded = squareform(pdist(xy))
    # metric MDS of Euclidean distances of 4-D points into 2-D keeps their order broadly
    assert np.corrcoef(embedded[np.triu_indices(8, 1)], r.vectors[0])[0, 1] > 0.8
    ax = r.plot_mds(0)
    assert len(ax.texts) == 8
    plt.close("all")


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ShapeError, match="do not form the upper triangle"):
        RDMs(np.ones((2, 4)))
    with pytest.raises(NonFiniteError, match="Inf"):
        RDMs(np.array([1.0, np.inf, 2.0]))
    with pytest.raises(LabelError, match="repeated"):
        RDMs(np.ones(3), conditions=["a", "a", "b"])
    with pytest.raises(LabelError, match="conditions has 2 entries"):
        RDMs(np.ones(3), conditions=["a", "b"])
    with pytest.raises(ShapeError, match="non-zero diagonal"):
        RDMs(np.ones((1, 3, 3)))
    with pytest.raises(LabelError, match="metadata 'subject' has 1 entries"):
        RDMs(np.ones((2, 3)), metadata={"subject": [1]})
