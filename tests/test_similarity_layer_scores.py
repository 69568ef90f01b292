"""Layer scoring with held-out selection of the best layer (neuroenc.similarity.layer_scores)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold

from neuroenc.braindata import BrainData
from neuroenc.encoding.ridge import RidgeCV
from neuroenc.encoding.scoring import noise_ceiling as encoding_ceiling
from neuroenc.encoding.scoring import score_targets
from neuroenc.errors import (
    EmptySelectionError,
    LabelError,
    NonFiniteError,
    ShapeError,
    UnknownNameError,
)
from neuroenc.rsa.ceiling import noise_ceiling
from neuroenc.rsa.comparisons import compare
from neuroenc.rsa.compute import compute_rdm
from neuroenc.rsa.inference import evaluate
from neuroenc.rsa.rdms import RDMs
from neuroenc.similarity import layer_scores as ls
from neuroenc.similarity.layer_scores import DEFAULT_ALPHAS, LayerScores, score_layers

RTOL = 1e-8


def chain(n_stimuli: int = 60, n_layers: int = 5, width: int = 30, seed: int = 0) -> dict[str, np.ndarray]:
    """Layers of a random network: each is a noisy nonlinear function of the previous one."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n_stimuli, width))
    layers = {}
    for k in range(1, n_layers + 1):
        h = np.tanh(h @ rng.standard_normal((width, width)) / np.sqrt(width) + rng.standard_normal((n_stimuli, width)))
        layers[f"layer{k}"] = h
    return layers


def responses(layer: np.ndarray, n_features: int = 40, noise: float = 1.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return layer @ rng.standard_normal((layer.shape[1], n_features)) + noise * rng.standard_normal(
        (layer.shape[0], n_features)
    )


def repeated_braindata(signal: np.ndarray, n_runs: int = 4, noise: float = 1.5, seed: int = 2) -> BrainData:
    """fMRI-like betas: every stimulus once per run, conditions labelled c00.., shuffled within runs."""
    rng = np.random.default_rng(seed)
    n_stim = signal.shape[0]
    rows, obs = [], []
    for run in range(n_runs):
        order = rng.permutation(n_stim)
        rows.append(signal[order] + noise * rng.standard_normal((n_stim,) + signal.shape[1:]))
        obs.append(pd.DataFrame({"condition": [f"c{i:02d}" for i in order], "run": run}))
    return BrainData(np.concatenate(rows), pd.concat(obs, ignore_index=True), "fmri")


def fold_splits(n: int, n_folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.sort(a), np.sort(b)) for a, b in KFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(n))]


def rows(result: LayerScores, **where) -> pd.DataFrame:
    table = result.scores
    for column, value in where.items():
        table = table[table[column] == value]
    return table


@pytest.fixture(scope="module")
def layers() -> dict[str, np.ndarray]:
    return chain()


# ----------------------------------------------------------------------
# the generating layer is found on held-out data
@pytest.mark.parametrize("method", ["encoding", "rsa", "cka"])
def test_generating_layer_is_selected_on_every_fold(layers, method):
    if method == "cka":
        pytest.importorskip("neuroenc.similarity.kernel_alignment")
    result = score_layers(layers, responses(layers["layer3"]), method)
    assert result.best_layer["all"] == "layer3"
    chosen = result.scores[result.scores["selected"]]
    assert len(chosen) == 5 and (chosen["layer"] == "layer3").all()
    assert (chosen["split"] == "test").all()
    summary = result.summary()
    assert summary.loc[summary["n_selected"].idxmax(), "layer"] == "layer3"
    assert summary["n_selected"].sum() == 5


def test_no_double_dipping_with_unrelated_brain_data():
    """Random brains: held-out scores of the chosen layers centre on 0; the in-sample maximum does not."""
    selected, in_sample_max = [], []
    for seed in range(12):
        layers = {f"l{i}": np.random.default_rng(100 * seed + i).standard_normal((40, 10)) for i in range(8)}
        brain = np.random.default_rng(10_000 + seed).standard_normal((40, 15))
        result = score_layers(layers, brain, "rsa", cv=4, random_state=seed)
        selected.extend(result.scores.loc[result.scores["selected"], "score"])
        train = rows(result, split="train").groupby("fold")["score"].max()
        in_sample_max.extend(train)
    selected, in_sample_max = np.asarray(selected), np.asarray(in_sample_max)
    sem = selected.std(ddof=1) / np.sqrt(len(selected))
    assert abs(selected.mean()) < 3 * sem + 0.01
    assert in_sample_max.mean() > selected.mean() + 0.03
    assert (in_sample_max > 0).mean() > 0.9


# ----------------------------------------------------------------------
# parity with the underlying neuroenc functions
def test_rsa_scores_equal_direct_rdm_comparisons(layers):
    brain = responses(layers["layer2"])
    result = score_layers(layers, brain, "rsa", rdm_method="correlation", compare_method="kendall_tau_a")
    for fold, (train, test) in enumerate(fold_splits(60)):
        for split, idx in (("train", train), ("test", test)):
            ref_brain = compute_rdm(brain[idx], "correlation")
            for name, X in layers.items():
                expected = compare(compute_rdm(X[idx], "correlation"), ref_brain, "kendall_tau_a")[0, 0]
                got = rows(result, fold=fold, split=split, layer=name)["score"].item()
                np.testing.assert_allclose(got, expected, rtol=RTOL)


def test_encoding_scores_equal_direct_ridge_fits(layers):
    brain = responses(layers["layer4"], n_features=12)
    result = score_layers(layers, brain, "encoding", aggregate="mean", scoring="r2", random_state=3)
    for fold, (train, test) in enumerate(fold_splits(60, seed=3)):
        for name, X in layers.items():
            Xc = X[train] - X[train].mean(0)
            alphas = np.asarray(DEFAULT_ALPHAS) * (Xc**2).sum()
            inner = KFold(5, shuffle=True, random_state=3)
            model = RidgeCV(alphas, cv=inner, scoring="r2").fit(X[train], brain[train])
            held_out = score_targets(brain[test], model.predict(X[test]), "r2").mean()
            np.testing.assert_allclose(rows(result, fold=fold, split="test", layer=name)["score"].item(), held_out)
            np.testing.assert_allclose(
                rows(result, fold=fold, split="train", layer=name)["score"].item(), model.cv_scores_.mean()
            )


def test_cka_and_callable_metric_parity(layers):
    brain = responses(layers["layer1"], n_features=8)
    splits = fold_splits(60, n_folds=3, seed=7)

    def neg_distance(X, Y, scale=1.0):
        return -scale * abs(np.linalg.norm(np.corrcoef(X)) - np.linalg.norm(np.corrcoef(Y)))

    result = score_layers(layers, brain, neg_distance, cv=3, random_state=7, metric_kwargs={"scale": 2.0})
    assert result.method == "neg_distance"
    for fold, (train, test) in enumerate(splits):
        for split, idx in (("train", train), ("test", test)):
            got = rows(result, fold=fold, split=split, layer="layer5")["score"].item()
            assert got == pytest.approx(neg_distance(layers["layer5"][idx], brain[idx], 2.0), rel=RTOL)
    assert result.scores["normalized_score"].isna().all() and result.ceilings.empty

    cka_module = pytest.importorskip("neuroenc.similarity.kernel_alignment")
    result = score_layers(layers, brain, "cka", cv=3, random_state=7, metric_kwargs={"debiased": True})
    for fold, (_, test) in enumerate(splits):
        for name, X in layers.items():
            expected = cka_module.cka(X[test], brain[test], debiased=True)
            assert rows(result, fold=fold, split="test", layer=name)["score"].item() == pytest.approx(
                expected, rel=RTOL
            )


def test_pairwise_metric_names(layers):
    shape = pytest.importorskip("neuroenc.similarity.shape")
    pytest.importorskip("neuroenc.similarity.all_pairs")
    brain = responses(layers["layer2"], n_features=10, noise=0.3)
    result = score_layers(layers, brain, "shape", cv=3, metric_kwargs={"alpha": 0.5})
    assert result.method == "shape" and not result.greater_is_better
    assert result.best_layer["all"] == "layer2"
    _, test = fold_splits(60, 3)[1]
    expected = shape.shape_distance(layers["layer4"][test], brain[test], alpha=0.5)
    assert rows(result, fold=1, split="test", layer="layer4")["score"].item() == pytest.approx(expected, rel=RTOL)


def test_distance_metric_selects_the_lowest_score(layers):
    brain = responses(layers["layer3"])

    def distance(X, Y):  # 1 - correlation of the two RDMs
        a, b = compute_rdm(X, "correlation").vectors[0], compute_rdm(Y, "correlation").vectors[0]
        return 1.0 - np.corrcoef(a, b)[0, 1]

    result = score_layers(layers, brain, distance, greater_is_better=False)
    assert not result.greater_is_better
    assert result.best_layer["all"] == "layer3"
    chosen = result.scores[result.scores["selected"]]
    for fold, row in chosen.set_index("fold").iterrows():
        train = rows(result, fold=fold, split="train")
        assert row["layer"] == train.loc[train["score"].idxmin(), "layer"]


# ----------------------------------------------------------------------
# BrainData: conditions, repeats and noise ceilings, ROIs
def test_braindata_with_repeats_gives_split_half_ceilings(layers):
    signal = np.concatenate([responses(layers["layer2"], 20, 0.0, 5), responses(layers["layer4"], 20, 0.0, 6)], 1)
    brain = repeated_braindata(signal, n_runs=2)
    rois = {"early": np.arange(20), "late": [f"f{i}" for i in range(20, 40)]}
    shuffled = np.random.default_rng(0).permutation(60)
    acts = {name: X for name, X in layers.items()}  # rows follow the sorted conditions c00..c59
    result = score_layers(acts, brain, "encoding", rois=rois, ceiling_splits=5)
    assert result.best_layer.to_dict() == {"early": "layer2", "late": "layer4"}
    # encoding ceiling: median over the ROI's voxels of the split-half ceiling on the test stimuli
    X = brain.data
    R = np.stack(
        [X[brain.obs["run"] == r][np.argsort(brain.obs.loc[brain.obs["run"] == r, "condition"])] for r in (0, 1)]
    )
    for fold, (_, test) in enumerate(fold_splits(60)):
        expected = np.median(encoding_ceiling(R[:, test][:, :, 20:], "pearson", 5, 0))
        got = rows(result, fold=fold, split="test", roi="late")
        np.testing.assert_allclose(got["ceiling"], expected, rtol=RTOL)
        np.testing.assert_allclose(got["normalized_score"], got["score"] / expected, rtol=RTOL)
    # RSA ceiling with 2 repeats: one split, sqrt of the Spearman-Brown corrected RDM reliability
    rsa = score_layers(acts, brain, "rsa", rois=rois)
    assert rsa.best_layer.to_dict() == {"early": "layer2", "late": "layer4"}
    for fold, (_, test) in enumerate(fold_splits(60)):
        halves = [compute_rdm(R[k][test][:, :20], "correlation") for k in (0, 1)]
        r = compare(halves[0], halves[1], "spearman")[0, 0]
        got = rows(rsa, fold=fold, split="test", roi="early")["ceiling"]
        np.testing.assert_allclose(got, np.sqrt(2 * r / (1 + r)), rtol=RTOL)
    assert set(rsa.ceilings.columns) == {"roi", "time", "fold", "split", "lower", "upper"}
    # Activations-like input with shuffled stimulus ids is matched by id
    ids = np.array([f"c{i:02d}" for i in range(60)])

    class Acts(dict):
        layer_names = list(acts)
        stimulus_ids = ids[shuffled]

    moved = Acts({name: X[shuffled] for name, X in acts.items()})
    again = score_layers(moved, brain, "encoding", rois=rois, ceiling_splits=5)
    pd.testing.assert_frame_equal(again.scores, result.scores)


def test_crossnobis_brain_rdms_use_the_runs_as_folds(layers):
    brain = repeated_braindata(responses(layers["layer4"], 16, 0.0, 11), n_runs=4, noise=1.0)
    result = score_layers(layers, brain, "rsa", brain_rdm_method="crossnobis", ceiling_splits=3)
    assert result.best_layer["all"] == "layer4"
    rdm = compute_rdm(brain, "crossnobis")  # folds: the run column
    for fold, (_, test) in enumerate(fold_splits(60)):
        held_out = rdm.subset_conditions(rdm.conditions[test])
        expected = compare(compute_rdm(layers["layer2"][test], "correlation"), held_out.vectors, "spearman")[0, 0]
        got = rows(result, fold=fold, split="test", layer="layer2")["score"].item()
        np.testing.assert_allclose(got, expected, rtol=RTOL)
    assert (result.scores["ceiling"] > 0).all()
    two_runs = repeated_braindata(responses(layers["layer4"], 16, 0.0, 11), n_runs=2)
    with pytest.warns(UserWarning, match="No RSA noise ceiling"):
        no_ceiling = score_layers(layers, two_runs, "rsa", brain_rdm_method="crossnobis")
    assert no_ceiling.scores["ceiling"].isna().all() and no_ceiling.ceilings.empty


def test_activations_container_is_aligned_by_stimulus_ids(layers):
    activationdata = pytest.importorskip("neuroenc.activationdata")
    brain = repeated_braindata(responses(layers["layer3"], 20, 0.0, 3), n_runs=2)
    ids = [f"c{i:02d}" for i in range(60)]
    order = np.random.default_rng(1).permutation(60)
    act = activationdata.Activations({k: v[order] for k, v in layers.items()}, [ids[i] for i in order])
    a = score_layers(act, brain, "rsa")
    b = score_layers(layers, brain, "rsa")
    pd.testing.assert_frame_equal(a.scores, b.scores)
    missing = activationdata.Activations({k: v[:50] for k, v in layers.items()}, ids[:50])
    with pytest.raises(UnknownNameError, match="c50"):
        score_layers(missing, brain, "rsa")


def test_rois_from_a_features_column_and_masks(layers):
    signal = np.concatenate([responses(layers["layer1"], 10, 0.3, 8), responses(layers["layer5"], 10, 0.3, 9)], 1)
    features = pd.DataFrame({"name": [f"v{i}" for i in range(20)], "area": ["V1"] * 10 + ["IT"] * 10})
    brain = BrainData(signal, [f"s{i:02d}" for i in range(60)], "fmri", features=features)
    by_column = score_layers(layers, brain, "rsa", rois="area")
    assert by_column.best_layer.to_dict() == {"V1": "layer1", "IT": "layer5"}
    mask = np.zeros(20, dtype=bool)
    mask[10:] = True
    by_mask = score_layers(layers, brain, "rsa", rois={"IT": mask})
    it = rows(by_column, roi="IT").reset_index(drop=True)
    pd.testing.assert_frame_equal(by_mask.scores, it)
    direct = score_layers(layers, signal[:, 10:], "rsa")
    np.testing.assert_allclose(direct.scores["score"], it["score"], rtol=RTOL)


# ----------------------------------------------------------------------
# several subjects' RDMs
@pytest.fixture(scope="module")
def subject_rdms(layers):
    rng = np.random.default_rng(4)
    true = compute_rdm(layers["layer3"], "correlation").vectors[0]
    vectors = true + 0.15 * rng.standard_normal((8, len(true)))
    meta = {"subject": np.repeat(["s1", "s2", "s3", "s4"], 2), "session": [1, 2] * 4}
    return RDMs(vectors, conditions=[f"c{i:02d}" for i in range(60)], metadata=meta)


def test_rdms_of_several_subjects_are_split_by_subject(layers, subject_rdms):
    result = score_layers(layers, subject_rdms, "rsa", compare_method="pearson")
    assert result.split_by == "subjects" and result.scores["fold"].nunique() == 4
    assert result.best_layer["all"] == "layer3"
    models = RDMs(np.stack([compute_rdm(X, "correlation").vectors[0] for X in layers.values()]))
    models = RDMs(models.vectors, conditions=subject_rdms.conditions)
    ev = evaluate(models, subject_rdms, "pearson", bootstrap=None, rdm_descriptor="subject")
    per_subject = ev.scores  # (subjects, models)
    for fold in range(4):  # leave-one-subject-out, subjects in sorted order
        got = rows(result, fold=fold, split="test").sort_values("depth")["score"].to_numpy()
        np.testing.assert_allclose(got, per_subject[fold], rtol=RTOL)
    test = result.ceilings[result.ceilings["split"] == "test"]
    lower, upper = noise_ceiling(subject_rdms, "pearson", rdm_descriptor="subject")
    np.testing.assert_allclose(test["lower"].mean(), lower, rtol=RTOL)
    np.testing.assert_allclose(test["upper"].mean(), upper, rtol=RTOL)
    chosen = result.scores[result.scores["selected"]]
    np.testing.assert_allclose(chosen["normalized_score"], chosen["score"] / chosen["ceiling"], rtol=RTOL)
    train_ceiling = result.ceilings[(result.ceilings["split"] == "train") & (result.ceilings["fold"] == 0)]
    rest = subject_rdms.select(subject=["s2", "s3", "s4"])
    np.testing.assert_allclose(
        train_ceiling[["lower", "upper"]].to_numpy()[0],
        noise_ceiling(rest, "pearson", rdm_descriptor="subject"),
        rtol=RTOL,
    )


def test_rdms_split_by_stimuli_use_the_ceiling_of_the_held_out_stimuli(layers, subject_rdms):
    result = score_layers(layers, subject_rdms, "rsa", split_by="stimuli", cv=3, random_state=1)
    for fold, (_, test) in enumerate(fold_splits(60, 3, seed=1)):
        subset = subject_rdms.subset_conditions(subject_rdms.conditions[test])
        lower, upper = noise_ceiling(subset, "spearman", rdm_descriptor="subject")
        got = result.ceilings[(result.ceilings["fold"] == fold) & (result.ceilings["split"] == "test")]
        np.testing.assert_allclose(got[["lower", "upper"]].to_numpy()[0], [lower, upper], rtol=RTOL)
        np.testing.assert_allclose(rows(result, fold=fold, split="test")["ceiling"], lower, rtol=RTOL)


def test_rdms_with_roi_and_time_metadata(layers):
    vecs, meta = [], {"roi": [], "time": [], "subject": []}
    for roi, layer in (("A", "layer2"), ("B", "layer5")):
        base = compute_rdm(layers[layer], "correlation").vectors[0]
        for t in (0.0, 0.1):
            for s in range(3):
                rng = np.random.default_rng(len(vecs))
                vecs.append(base + 0.2 * rng.standard_normal(len(base)))
                meta["roi"].append(roi), meta["time"].append(t), meta["subject"].append(f"s{s}")
    data = RDMs(np.stack(vecs), metadata=meta)
    result = score_layers(layers, data, "rsa", rois=["B", "A"])
    assert result.time_resolved
    assert result.best_layer.to_dict() == {
        ("B", 0.0): "layer5",
        ("B", 0.1): "layer5",
        ("A", 0.0): "layer2",
        ("A", 0.1): "layer2",
    }
    assert list(pd.unique(result.scores["roi"])) == ["B", "A"]


# ----------------------------------------------------------------------
# time-resolved pattern data
def test_time_resolved_braindata_is_scored_per_time_point(layers):
    n_times = 3
    signal = np.stack([responses(layers[f"layer{t + 2}"], 16, 0.5, 20 + t) for t in range(n_times)], axis=2)
    brain = BrainData(signal, [f"s{i:02d}" for i in range(60)], "meg", times=[0.0, 0.05, 0.1])
    result = score_layers(layers, brain, "rsa")
    best = result.best_layer
    assert best.to_dict() == {("all", 0.0): "layer2", ("all", 0.05): "layer3", ("all", 0.1): "layer4"}
    rdms = compute_rdm(brain, "correlation")
    train, test = fold_splits(60)[2]
    for t, time in enumerate(brain.times):
        ref = RDMs(rdms.vectors[t], conditions=rdms.conditions).subset_conditions(rdms.conditions[test])
        expected = compare(compute_rdm(layers["layer1"][test], "correlation").vectors, ref.vectors, "spearman")[0, 0]
        got = rows(result, fold=2, split="test", layer="layer1", time=time)["score"].item()
        np.testing.assert_allclose(got, expected, rtol=RTOL)
    encoding = score_layers(layers, brain, "encoding", cv=3)
    assert encoding.best_layer.tolist() == ["layer2", "layer3", "layer4"]
    fig = result.plot()
    assert len(fig.axes) == 2  # image + colour bar
    assert result.plot(time=0.06).axes[0].get_lines()


# ----------------------------------------------------------------------
# result object
def test_result_tables_and_plot(layers):
    brain = repeated_braindata(responses(layers["layer3"], 20, 0.0, 3), n_runs=3)
    result = score_layers(layers, brain, "encoding", rois={"a": np.arange(10), "b": np.arange(10, 20)})
    assert list(result.scores.columns) == [
        "roi", "time", "fold", "layer", "depth", "split", "score", "ceiling", "normalized_score", "selected",
    ]  # fmt: skip
    assert len(result.scores) == 2 * 5 * 5 * 2
    assert result.scores["time"].isna().all() and not result.time_resolved
    sel = result.selected()
    assert list(sel["roi"]) == ["a", "b"] and (sel["n_folds"] == 5).all()
    assert (sel["best_layer"] == "layer3").all()
    assert np.isfinite(sel["normalized_score"]).all() and (sel["ceiling"] > 0).all()
    assert "best layer: a: layer3, b: layer3" in repr(result)
    fig = result.plot()
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(layers)
    assert ax.get_legend() is not None
    import matplotlib.figure

    assert isinstance(result.plot(normalized=True, rois=["b"]), matplotlib.figure.Figure)
    with pytest.raises(UnknownNameError, match="ROI"):
        result.plot(rois=["c"])


# ----------------------------------------------------------------------
# bad input: clear errors before any work
@pytest.fixture
def no_work(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("scoring started before the input was checked")

    for cls in (ls._RSA, ls._Encoding, ls._Metric):
        monkeypatch.setattr(cls, "run", fail)


def test_bad_inputs_raise_before_work(layers, subject_rdms, no_work):
    brain = responses(layers["layer1"])
    with pytest.raises(ShapeError, match="60 stimuli but the brain data have 59"):
        score_layers(layers, brain[:59], "rsa")
    with pytest.raises(ShapeError, match="same stimuli"):
        score_layers({"a": np.ones((60, 3)), "b": np.ones((59, 3))}, brain)
    with pytest.raises(UnknownNameError, match="Unknown method 'procrustes'"):
        score_layers(layers, brain, "procrustes")
    with pytest.raises(UnknownNameError, match="RDM comparison method"):
        score_layers(layers, brain, "rsa", compare_method="spearmann")
    with pytest.raises(UnknownNameError, match="aggregate"):
        score_layers(layers, brain, "encoding", aggregate="max")
    bd = BrainData(brain, [f"s{i:02d}" for i in range(60)], "fmri")
    with pytest.raises(UnknownNameError, match="'nope'"):
        score_layers(layers, bd, "rsa", rois={"x": ["f1", "nope"]})
    with pytest.raises(UnknownNameError, match="features column"):
        score_layers(layers, bd, "rsa", rois="area")
    with pytest.raises(EmptySelectionError, match="ROI 'x'"):
        score_layers(layers, bd, "rsa", rois={"x": np.zeros(40, dtype=bool)})
    with pytest.raises(ShapeError, match="out of range"):
        score_layers(layers, bd, "rsa", rois={"x": [0, 40]})
    with pytest.raises(LabelError, match="metadata column 'roi'"):
        score_layers(layers, subject_rdms, "rsa", rois=["IT"])
    with_rois = RDMs(subject_rdms.vectors, metadata={"roi": ["V1"] * 8, "subject": subject_rdms.metadata["subject"]})
    with pytest.raises(UnknownNameError, match="Unknown ROI: 'IT'. Available: 'V1'"):
        score_layers(layers, with_rois, "rsa", rois=["IT"])
    with pytest.raises(LabelError, match="give rois as a list"):
        score_layers(layers, with_rois, "rsa", rois={"IT": [0]})
    with pytest.raises(ShapeError, match="method='rsa'"):
        score_layers(layers, subject_rdms, "encoding")
    with pytest.raises(ShapeError, match="split_by='subjects'"):
        score_layers(layers, bd, "rsa", split_by="subjects")
    with pytest.raises(ShapeError, match="cv=61"):
        score_layers(layers, brain, "rsa", cv=61)
    with pytest.raises(ShapeError, match="at least 3"):
        score_layers(layers, brain, "rsa", cv=30)
    with pytest.raises(ShapeError, match="overlap"):
        score_layers(layers, brain, "rsa", cv=[(np.arange(40), np.arange(30, 60))])
    bad = dict(layers, layer2=np.where(np.eye(60, 30) > 0, np.nan, layers["layer2"]))
    with pytest.raises(NonFiniteError, match="layer2"):
        score_layers(bad, brain)
    with pytest.raises(NonFiniteError):
        score_layers(layers, np.where(np.eye(60, 40) > 0, np.inf, brain))
    with pytest.raises(ShapeError, match="Activations or a dict"):
        score_layers([layers["layer1"]], brain)
    with pytest.raises(LabelError, match="stimulus_ids"):

        class Acts(dict):
            layer_names = ["layer1"]
            stimulus_ids = np.arange(60)

        score_layers(Acts(layer1=layers["layer1"]), bd, "rsa")
