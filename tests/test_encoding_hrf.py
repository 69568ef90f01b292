"""HRF and FIR designs: parity with nilearn's compute_regressor; FIR encoding of nitime's event-related fMRI."""

from __future__ import annotations

import numpy as np
import pytest
from nilearn.glm.first_level.hemodynamic_models import compute_regressor

from neuroenc.encoding.hrf import hrf_design, indicator_matrix
from neuroenc.errors import LabelError, NonFiniteError, ShapeError, UnknownNameError


def nilearn_design(onsets, durations, amplitudes, frame_times, model, fir_delays=None, oversampling=50):
    columns = [
        compute_regressor((onsets, durations, amplitudes[:, j]), model, frame_times, fir_delays=fir_delays,
                          oversampling=oversampling)[0]
        for j in range(amplitudes.shape[1])
    ]  # fmt: skip
    return np.concatenate(columns, axis=1)


def rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize(("model", "delays"), [("glover", None), ("spm", None), ("fir", [0, 1, 4])])
def test_event_design_matches_nilearn(model, delays):
    rng = np.random.default_rng(0)
    frame_times = np.arange(80) * 2.0 + 1.0
    onsets = np.sort(rng.uniform(0, 150, 15))
    durations = rng.uniform(0, 6, 15)
    durations[:3] = 0  # impulses
    amplitudes = rng.standard_normal((15, 3))
    ours = hrf_design(amplitudes, frame_times, tr=2.0, onsets=onsets, durations=durations, model=model,
                      fir_delays=delays or (0,))  # fmt: skip
    ref = nilearn_design(onsets, durations, amplitudes, frame_times, model, delays)
    assert ours.shape == ref.shape
    assert rel(ours, ref) < 1e-10


def test_frame_sampled_features_match_nilearn_and_fir_is_a_shift():
    rng = np.random.default_rng(1)
    features = rng.standard_normal((50, 4))
    times = np.arange(50) * 2.5
    for model, delays in (("glover", None), ("spm", None), ("fir", [0, 1, 2])):
        ours = hrf_design(features, tr=2.5, model=model, fir_delays=delays or (0,))
        ref = nilearn_design(times, np.full(50, 2.5), features, times, model, delays)
        assert rel(ours, ref) < 1e-10
    fir = hrf_design(features, tr=2.5, model="fir", fir_delays=[0, 2])
    # feature-major columns; delay d is the feature d frames earlier
    np.testing.assert_allclose(fir[:, 0], features[:, 0], atol=1e-12)
    np.testing.assert_allclose(fir[2:, 3], features[:-2, 1], atol=1e-12)
    np.testing.assert_allclose(fir[:2, 3], 0, atol=1e-12)


def test_runs_are_convolved_separately():
    rng = np.random.default_rng(2)
    features = rng.standard_normal((60, 2))
    runs = np.repeat([0, 1, 2], 20)
    design = hrf_design(features, tr=2.0, runs=runs)
    for r in range(3):
        np.testing.assert_allclose(design[runs == r], hrf_design(features[runs == r], tr=2.0), atol=1e-12)
    # a response does not spill into the next run
    assert not np.allclose(design, hrf_design(features, tr=2.0))


def test_indicator_matrix():
    labels = np.array(["rest", "face", "house", "face", "rest"])
    matrix, conditions = indicator_matrix(labels, exclude=["rest"])
    assert conditions == ["face", "house"]
    np.testing.assert_array_equal(matrix, [[0, 0], [1, 0], [0, 1], [1, 0], [0, 0]])
    with pytest.raises(LabelError):
        indicator_matrix(labels, conditions=["cat"])


def test_nitime_event_related_fir_encoding(nitime_dir):
    import pandas as pd
    from sklearn.model_selection import KFold

    from neuroenc.encoding.ridge import RidgeCV
    from neuroenc.encoding.scoring import cross_val_predict, score_targets

    table = pd.read_csv(nitime_dir / "event_related_fmri.csv")
    events, kinds = indicator_matrix(table["events"].to_numpy().astype(int), exclude=[0])
    assert kinds == [1, 2, 3, 4, 5, 6] and events.sum() == 6 * 96
    X = hrf_design(events, tr=2.0, model="fir", fir_delays=range(10))
    assert X.shape == (3360, 60)
    y = table["bold"].to_numpy()
    pred = cross_val_predict(RidgeCV(np.logspace(-2, 4, 13), cv=5), X, y, cv=KFold(5))
    r2 = score_targets(y, pred, "r2")
    # 5-fold held-out R2 of the FIR model (0.206 with these settings)
    assert 0.15 < r2 < 0.3
    # the FIR model captures more than a canonical HRF with one regressor per event type
    glover = cross_val_predict(RidgeCV(np.logspace(-2, 4, 13), cv=5), hrf_design(events, tr=2.0), y, cv=KFold(5))
    assert r2 > score_targets(y, glover, "r2") > 0.05


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        (dict(model="gamma"), UnknownNameError),
        (dict(tr=0), ShapeError),
        (dict(model="fir", fir_delays=[-1]), ShapeError),
        (dict(model="fir", fir_delays=[0.5]), ShapeError),
        (dict(oversampling=0), ShapeError),
        (dict(runs=np.arange(3)), LabelError),
        (dict(frame_times=np.arange(20.0)), ShapeError),
    ],
)
def test_bad_frame_input(kwargs, error):
    params = dict(tr=2.0) | kwargs
    with pytest.raises(error):
        hrf_design(np.ones((20, 2)), **params)


def test_bad_event_input():
    with pytest.raises(ShapeError, match="frame_times"):
        hrf_design(None, tr=2.0, onsets=[1.0, 5.0])
    with pytest.raises(LabelError):
        hrf_design(np.ones((3, 2)), 40, tr=2.0, onsets=[1.0, 5.0])
    with pytest.raises(LabelError):
        hrf_design(None, 40, tr=2.0, onsets=[1.0, 5.0], durations=[1.0])
    with pytest.raises(ShapeError, match="non-negative"):
        hrf_design(None, 40, tr=2.0, onsets=[1.0, 5.0], durations=[1.0, -1.0])
    with pytest.raises(NonFiniteError):
        hrf_design(None, 40, tr=2.0, onsets=[1.0, np.nan])
    with pytest.raises(ShapeError, match="increasing"):
        hrf_design(None, [0.0, 2.0, 1.0], tr=2.0, onsets=[1.0])
    # an int frame_times is a number of frames at the TR
    np.testing.assert_allclose(
        hrf_design(None, 40, tr=2.0, onsets=[1.0, 5.0]),
        hrf_design(None, np.arange(40) * 2.0, tr=2.0, onsets=[1.0, 5.0]),
    )
