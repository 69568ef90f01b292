"""Score every layer of a network against brain data, choosing the best layer on held-out data.

:func:`score_layers` compares each layer's activations with each region of
interest (ROI) and time point of a brain dataset by representational
similarity analysis (RSA), a cross-validated encoding model, CKA or any
metric, and answers "which layer matches this region best?" without double
dipping: the stimuli (or, for RDMs of several subjects, the subjects) are
split into folds; on each training split every layer is scored and the best
one chosen, and the chosen layer is scored on the held-out split. The mean
held-out score of the chosen layers is an unbiased estimate of "the best
layer's" score, unlike the maximum over layers of in-sample scores, which
grows with the number of layers even for unrelated data.

Scores are divided by the noise ceiling of the same split when the data allow
one: several subjects' RDMs (the lower bound of Nili et al. 2014) or repeated
presentations of the stimuli (Spearman-Brown corrected split-half
reliability).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from neuroenc.errors import DataError, EmptySelectionError, LabelError, ShapeError, UnknownNameError
from neuroenc.validation import check_array, check_choice, check_names

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.axes
    import matplotlib.figure

    from neuroenc.braindata import BrainData
    from neuroenc.rsa.rdms import RDMs

__all__ = ["METHODS", "DEFAULT_ALPHAS", "LayerScores", "score_layers"]

#: built-in scoring methods (a callable or a metric name of
#: :mod:`neuroenc.similarity.all_pairs` is accepted as well)
METHODS = ("rsa", "encoding", "cka")
_SPLIT_BY = ("auto", "stimuli", "subjects")
_AGGREGATES = {"median": np.median, "mean": np.mean}
_SCORINGS = ("pearson", "r2")
#: ridge penalties relative to each layer's total sum of squares (see ``alphas``)
DEFAULT_ALPHAS = tuple(10.0 ** np.arange(-5, 4))
# fewest stimuli a split may hold: correlations and RDM comparisons need 3
_MIN_STIMULI = 3


# ----------------------------------------------------------------------
# result
@dataclass(repr=False)
class LayerScores:
    """Per-layer scores of :func:`score_layers`, with the held-out choice of the best layer.

    Attributes
    ----------
    scores : pandas.DataFrame
        One row per ROI, time, fold, layer and split, with columns ``roi``,
        ``time`` (NaN for data without a time axis), ``fold``, ``layer``,
        ``depth`` (1 = first layer given), ``split`` (``"train"`` or
        ``"test"``), ``score``, ``ceiling`` (noise ceiling of the same split,
        NaN without one), ``normalized_score`` (``score / ceiling``) and
        ``selected`` (True on the held-out row of the layer chosen on that
        fold's training split: ``scores[scores.selected]`` are the unbiased
        scores of "the best layer").
    ceilings : pandas.DataFrame
        Noise ceiling of every ROI, time, fold and split: ``lower`` and
        ``upper`` bounds (equal for split-half ceilings); empty without one.
    method : str
        Scoring method (``"rsa"``, ``"encoding"``, ``"cka"``, a metric name
        or the callable's name).
    layer_names : list of str
        Layers in depth order.
    greater_is_better : bool
        Whether higher scores mean more similar (False for distances).
    split_by : {"stimuli", "subjects"}
        What the folds split.
    params : dict
        The options the scores were computed with (RDM and comparison
        methods, scoring, aggregation, seeds ...).
    """

    scores: pd.DataFrame
    ceilings: pd.DataFrame
    method: str
    layer_names: list[str]
    greater_is_better: bool = True
    split_by: str = "stimuli"
    params: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        rois = list(pd.unique(self.scores["roi"]))
        n_folds = self.scores["fold"].nunique()
        times = self.scores["time"].nunique()
        when = f", {times} time points" if self.time_resolved else ""
        return (
            f"<LayerScores | {self.method}, {len(self.layer_names)} layers x {len(rois)} ROI(s){when}, "
            f"{n_folds} folds over {self.split_by}, best layer: {self._best_text()}>"
        )

    def _best_text(self) -> str:
        best = self.best_layer
        if self.time_resolved:
            return "per time point (see .best_layer)"
        return ", ".join(f"{roi}: {layer}" for roi, layer in best.items())

    @property
    def time_resolved(self) -> bool:
        """True when the brain data had a time axis (one score per time point)."""
        return bool(self.scores["time"].notna().any())

    def _keys(self) -> list[str]:
        return ["roi", "time"] if self.time_resolved else ["roi"]

    @property
    def best_layer(self) -> pd.Series:
        """The layer chosen on most training splits, per ROI (and time point).

        Ties go to the layer with the better mean training score. The index
        is the ROI (ROI and time for time-resolved data).
        """
        keys = self._keys()
        chosen = self.scores[self.scores["selected"]]
        counts = chosen.groupby(keys + ["layer"], sort=False, dropna=False).size().rename("n_selected")
        train = self.scores[self.scores["split"] == "train"]
        mean_train = train.groupby(keys + ["layer"], sort=False, dropna=False)["score"].mean()
        table = pd.concat([counts, mean_train], axis=1, join="inner").reset_index()
        rank = table["score"] if self.greater_is_better else -table["score"]
        table["_rank"] = rank.fillna(-np.inf)
        table = table.sort_values(["n_selected", "_rank"], ascending=False, kind="stable")
        best = table.drop_duplicates(keys).set_index(keys)["layer"]
        order = self.scores[keys].drop_duplicates()
        best = best.reindex(pd.MultiIndex.from_frame(order) if len(keys) > 1 else pd.Index(order["roi"], name="roi"))
        best.name = "best_layer"
        return best

    def selected(self) -> pd.DataFrame:
        """Held-out score of the layer chosen on each training split, summarised over folds.

        Returns
        -------
        pandas.DataFrame
            One row per ROI (and time point): ``best_layer`` (chosen most
            often), ``score`` and ``sem`` (mean and standard error over folds
            of the held-out scores of the chosen layers), ``normalized_score``,
            ``ceiling`` and ``n_folds``.
        """
        keys = self._keys()
        chosen = self.scores[self.scores["selected"]]
        grouped = chosen.groupby(keys, sort=False, dropna=False)
        out = grouped.agg(
            score=("score", "mean"),
            sem=("score", _sem),
            normalized_score=("normalized_score", "mean"),
            ceiling=("ceiling", "mean"),
            n_folds=("fold", "nunique"),
        )
        out.insert(0, "best_layer", self.best_layer.reindex(out.index))
        return out.reset_index()

    def summary(self) -> pd.DataFrame:
        """Mean scores of every layer over folds.

        Returns
        -------
        pandas.DataFrame
            One row per ROI, (time,) and layer: ``depth``, ``train_score``,
            ``test_score``, ``test_sem``, ``normalized_score`` (held out),
            ``ceiling`` (held out) and ``n_selected`` (folds whose training
            split chose the layer).
        """
        keys = self._keys() + ["layer", "depth"]
        test = self.scores[self.scores["split"] == "test"]
        train = self.scores[self.scores["split"] == "train"]
        g = test.groupby(keys, sort=False, dropna=False)
        out = g.agg(
            test_score=("score", "mean"),
            test_sem=("score", _sem),
            normalized_score=("normalized_score", "mean"),
            ceiling=("ceiling", "mean"),
            n_selected=("selected", "sum"),
        )
        out.insert(0, "train_score", train.groupby(keys, sort=False, dropna=False)["score"].mean())
        out["n_selected"] = out["n_selected"].astype(int)
        return out.reset_index()

    def plot(
        self,
        *,
        normalized: bool = False,
        rois: Sequence[str] | None = None,
        time: float | None = None,
        ax: matplotlib.axes.Axes | None = None,
    ) -> matplotlib.figure.Figure:
        """Held-out score against layer depth, one line per ROI.

        Each point is the mean over folds of a layer's held-out score (error
        bars: standard error over folds); the shaded band spans the mean lower
        to upper noise ceiling of the ROI, and a ring marks the layer chosen
        most often on the training splits. Time-resolved scores are shown as
        one layer x time image per ROI unless ``time`` picks a time point.

        Parameters
        ----------
        normalized : bool
            Plot ``normalized_score`` (ceiling at 1) instead of ``score``.
        rois : sequence of str, optional
            ROIs to show (default: all).
        time : float, optional
            For time-resolved scores: show the time point nearest to this.
        ax : matplotlib.axes.Axes, optional
            Axes to draw into (line plot only); a new figure otherwise.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt

        column = "normalized_score" if normalized else "score"
        all_rois = list(pd.unique(self.scores["roi"]))
        rois = all_rois if rois is None else check_names(rois, all_rois, "ROI")
        data = self.scores[self.scores["roi"].isin(rois)]
        if self.time_resolved and time is None:
            return self._plot_time(data, rois, column)
        if self.time_resolved:
            times = np.asarray(sorted(data["time"].unique()))
            nearest = times[np.argmin(np.abs(times - float(time)))]
            data = data[data["time"] == nearest]
        if ax is None:
            fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(self.layer_names), 3.6), layout="constrained")
        else:
            fig = ax.figure
        test = data[data["split"] == "test"]
        depths = np.arange(1, len(self.layer_names) + 1)
        best = self.best_layer
        for i, roi in enumerate(rois):
            color = f"C{i % 10}"
            sub = test[test["roi"] == roi].groupby("depth")[column]
            mean, sem = sub.mean().reindex(depths), sub.agg(_sem).reindex(depths)
            ax.errorbar(depths, mean, yerr=sem, color=color, marker="o", ms=4, capsize=2, label=str(roi))
            band = self._ceiling_band(roi, time=None if not self.time_resolved else data["time"].iloc[0])
            if normalized and band is not None:
                band = (1.0, 1.0)
            if band is not None:
                ax.axhspan(band[0], band[1] if band[1] > band[0] else band[0], color=color, alpha=0.15, lw=0)
                ax.axhline(band[0], color=color, lw=0.8, ls="--")
            layer = best[roi] if not self.time_resolved else best.get((roi, data["time"].iloc[0]))
            if isinstance(layer, str) and layer in self.layer_names:
                d = self.layer_names.index(layer) + 1
                ax.plot([d], [mean[d]], "o", ms=11, mfc="none", mec=color, mew=1.5)
        ax.set_xticks(depths, self.layer_names, rotation=30 if len(depths) > 4 else 0, ha="right")
        ax.set_xlabel("layer (depth)")
        ax.set_ylabel(("normalised " if normalized else "") + f"held-out score ({self.method})")
        ax.set_title("ring: layer chosen on the training folds; dashed: noise ceiling", fontsize="small")
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.legend(title="ROI", frameon=False, fontsize="small")
        return fig

    def _ceiling_band(self, roi: str, time: float | None) -> tuple[float, float] | None:
        c = self.ceilings
        if c.empty:
            return None
        c = c[(c["roi"] == roi) & (c["split"] == "test")]
        if time is not None:
            c = c[c["time"] == time]
        if c.empty or c["lower"].isna().all():
            return None
        return float(c["lower"].mean()), float(c["upper"].mean())

    def _plot_time(self, data: pd.DataFrame, rois: list[str], column: str) -> matplotlib.figure.Figure:
        import matplotlib.pyplot as plt

        test = data[data["split"] == "test"]
        fig, axes = plt.subplots(1, len(rois), figsize=(4.2 * len(rois), 3.4), squeeze=False, layout="constrained")
        best = self.best_layer
        for ax, roi in zip(axes[0], rois):
            table = test[test["roi"] == roi].pivot_table(index="depth", columns="time", values=column, aggfunc="mean")
            times = table.columns.to_numpy(dtype=float)
            step = np.diff(times).min() if len(times) > 1 else 1.0
            extent = (times[0] - step / 2, times[-1] + step / 2, len(self.layer_names) + 0.5, 0.5)
            im = ax.imshow(table.to_numpy(), aspect="auto", extent=extent, cmap="viridis", interpolation="nearest")
            chosen = [self.layer_names.index(best[(roi, t)]) + 1 for t in times if isinstance(best[(roi, t)], str)]
            if len(chosen) == len(times):
                ax.plot(times, chosen, "w.", ms=5, label="chosen layer")
            ax.set_yticks(np.arange(1, len(self.layer_names) + 1), self.layer_names)
            ax.set_xlabel("time (s)")
            ax.set_title(str(roi))
            fig.colorbar(im, ax=ax, label=("normalised " if column != "score" else "") + "held-out score")
        return fig


def _sem(values: Any) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else np.nan


# ----------------------------------------------------------------------
# inputs
@dataclass
class _Brain:
    """Brain data reduced to what the scorers need; stimuli rows follow ``conditions``."""

    kind: str  # "patterns" or "rdms"
    conditions: np.ndarray
    positional: bool  # rows are matched to activations by position (array input)
    blocks: list[tuple[Any, float]]  # (roi, time) of every scored unit, in output order
    # patterns
    means: np.ndarray | None = None  # (n_cond, n_features, n_times)
    observations: tuple | None = None  # (X (n_obs, n_feat, n_times), labels, folds) for brain RDMs
    repeats: np.ndarray | None = None  # (n_rep, n_cond, n_features, n_times)
    rois: dict = field(default_factory=dict)  # name -> feature indices
    times: np.ndarray | None = None
    # rdms: per block (row indices, subject group of each row), subject labels
    rdm_vectors: np.ndarray | None = None
    rdm_rows: list = field(default_factory=list)
    subjects: np.ndarray | None = None
    subject_of_row: np.ndarray | None = None

    @property
    def n_stimuli(self) -> int:
        return len(self.conditions)


def _is_braindata(x: Any) -> bool:
    return hasattr(x, "obs") and hasattr(x, "modality") and hasattr(x, "data")


def _layers(activations: Any) -> tuple[list[str], list[np.ndarray], np.ndarray | None]:
    """Layer names (depth order), 2-D float arrays (n_stimuli, n_units), stimulus ids (None for a dict)."""
    if hasattr(activations, "layer_names") and hasattr(activations, "stimulus_ids"):
        names = [str(n) for n in activations.layer_names]
        ids = np.asarray(activations.stimulus_ids)
    elif isinstance(activations, Mapping):
        names, ids = list(activations), None
        bad = [n for n in names if not isinstance(n, str)]
        if bad:
            raise LabelError(f"Layer names must be strings; got {bad[0]!r}.")
    else:
        raise ShapeError(
            "activations must be an Activations or a dict mapping layer names to arrays (n_stimuli, ...); "
            f"got {type(activations).__name__}."
        )
    if not names:
        raise EmptySelectionError("activations hold no layer.")
    arrays = []
    for name in names:
        arr = check_array(activations[name], f"activations[{name!r}]", ndim=None, dtype="numeric")
        if arr.ndim == 0:
            raise ShapeError(f"activations[{name!r}] is a scalar; expected (n_stimuli, ...).")
        arrays.append(arr.reshape(arr.shape[0], -1))
    sizes = {name: a.shape[0] for name, a in zip(names, arrays)}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ShapeError(f"All layers must hold the same stimuli; numbers of stimuli per layer: {listed}.")
    if ids is not None and len(ids) != arrays[0].shape[0]:
        raise LabelError(f"activations have {len(ids)} stimulus ids but {arrays[0].shape[0]} stimuli.")
    return names, arrays, ids


def _feature_indices(value: Any, roi: Any, names: list[str] | None, n_features: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise ShapeError(f"ROI {roi!r} must be a 1-D mask, list of indices or list of feature names.")
    if arr.dtype == bool:
        if len(arr) != n_features:
            raise ShapeError(f"The mask of ROI {roi!r} has {len(arr)} entries; the data have {n_features} features.")
        idx = np.flatnonzero(arr)
    elif arr.dtype.kind in "iu":
        if len(arr) and (arr.min() < -n_features or arr.max() >= n_features):
            raise ShapeError(f"ROI {roi!r} has feature indices out of range for {n_features} features.")
        idx = np.arange(n_features)[arr]
    elif arr.dtype.kind in "US" or arr.dtype == object:
        if names is None:
            raise LabelError(f"ROI {roi!r} lists feature names, but array brain data have no feature names.")
        check_names([str(a) for a in arr], names, f"feature in ROI {roi!r}")
        pos = {n: i for i, n in enumerate(names)}
        idx = np.array([pos[str(a)] for a in arr], dtype=np.intp)
    else:
        raise ShapeError(f"ROI {roi!r} must be a boolean mask, integer indices or feature names; got {arr.dtype}.")
    if idx.size == 0:
        raise EmptySelectionError(f"ROI {roi!r} selects no feature.")
    return idx.astype(np.intp)


def _pattern_rois(rois: Any, features: pd.DataFrame | None, n_features: int) -> dict[str, np.ndarray]:
    names = None if features is None else [str(n) for n in features["name"]]
    if rois is None:
        return {"all": np.arange(n_features)}
    if isinstance(rois, str):
        if features is None:
            raise LabelError(f"rois={rois!r} names a feature column, but array brain data have no features table.")
        check_names([rois], features.columns, "features column")
        column = features[rois]
        return {str(v): np.flatnonzero(column.to_numpy() == v) for v in pd.unique(column.dropna())}
    if not isinstance(rois, Mapping):
        raise ShapeError("rois must be None, a features column name, or a dict ROI name -> features.")
    if not rois:
        raise EmptySelectionError("rois is empty.")
    return {str(k): _feature_indices(v, k, names, n_features) for k, v in rois.items()}


def _repeat_array(X: np.ndarray, cond_idx: np.ndarray, n_cond: int, obs: pd.DataFrame | None) -> np.ndarray | None:
    """``(n_rep, n_cond, ...)``: the k-th presentation of each condition (in run order); None without repeats."""
    order = np.arange(len(cond_idx))
    if obs is not None and "run" in obs.columns:
        order = np.lexsort((order, pd.factorize(obs["run"], sort=True)[0]))
    occurrence = pd.Series(cond_idx[order]).groupby(cond_idx[order]).cumcount().to_numpy()
    n_rep = int(np.bincount(cond_idx, minlength=n_cond).min())
    if n_rep < 2:
        return None
    keep = occurrence < n_rep
    R = np.empty((n_rep, n_cond) + X.shape[1:])
    R[occurrence[keep], cond_idx[order][keep]] = X[order][keep]
    return R


def _patterns_brain(brain: Any, rois: Any, need_repeats: bool) -> _Brain:
    from neuroenc.rsa.compute import condition_means

    if _is_braindata(brain):
        X = check_array(brain.data, "brain.data", ndim=(2, 3), dtype=np.float64)
        means = condition_means(brain)
        conditions = means.conditions
        M = means.means[0]
        labels = brain.obs["condition"].to_numpy()
        folds = brain.obs["run"].to_numpy() if "run" in brain.obs.columns else None
        features, times, obs, positional = brain.features, brain.times, brain.obs, False
    else:
        X = check_array(brain, "brain", ndim=(2, 3), dtype=np.float64)
        M, conditions, labels, folds = X, np.arange(X.shape[0]), np.arange(X.shape[0]), None
        features, times, obs, positional = None, None, None, True
        if X.ndim == 3:
            times = np.arange(X.shape[2], dtype=np.float64)
    if X.ndim == 2:
        X, M = X[:, :, None], M[:, :, None]
    roi_map = _pattern_rois(rois, features, X.shape[1])
    repeats = None
    if need_repeats and not positional:
        cond_idx = pd.Index(conditions).get_indexer(labels)
        repeats = _repeat_array(X, cond_idx, len(conditions), obs)
    time_values = [np.nan] if times is None else list(np.asarray(times, dtype=float))
    blocks = [(roi, t) for roi in roi_map for t in time_values]
    return _Brain(
        "patterns",
        np.asarray(conditions),
        positional,
        blocks,
        means=M,
        observations=(X, labels, folds),
        repeats=repeats,
        rois=roi_map,
        times=None if times is None else np.asarray(times, dtype=float),
    )


def _rdms_brain(brain: RDMs, rois: Any, rdm_descriptor: Any) -> _Brain:
    meta = brain.metadata
    if rois is not None and isinstance(rois, Mapping):
        raise LabelError("RDM data carry their ROIs in the metadata column 'roi'; give rois as a list of ROI names.")
    if rois is not None:
        if "roi" not in meta.columns:
            raise LabelError("rois selects ROIs of RDM data by the metadata column 'roi', which these RDMs lack.")
        requested = [rois] if isinstance(rois, str) else [str(r) for r in rois]
        check_names(requested, [str(r) for r in pd.unique(meta["roi"])], "ROI")
        roi_values = requested
    else:
        roi_values = [str(r) for r in pd.unique(meta["roi"])] if "roi" in meta.columns else ["all"]
    roi_col = meta["roi"].astype(str).to_numpy() if "roi" in meta.columns else np.full(brain.n_rdms, "all")
    time_col = meta["time"].to_numpy(dtype=float) if "time" in meta.columns else np.full(brain.n_rdms, np.nan)
    if isinstance(rdm_descriptor, str) and rdm_descriptor == "auto":
        rdm_descriptor = "subject" if "subject" in meta.columns else None
    if rdm_descriptor is None:
        subject_col = np.arange(brain.n_rdms).astype(str)
    else:
        check_names([rdm_descriptor], meta.columns, "RDM metadata column")
        subject_col = meta[rdm_descriptor].astype(str).to_numpy()
    subjects = np.unique(subject_col)  # sorted: the subject folds index this array
    subject_of_row = np.searchsorted(subjects, subject_col)
    times = sorted(set(time_col[~np.isnan(time_col)])) or [np.nan]
    blocks, rows = [], []
    for roi in roi_values:
        for t in times:
            in_block = (roi_col == roi) & ((time_col == t) if np.isfinite(t) else np.isnan(time_col))
            idx = np.flatnonzero(in_block)
            if idx.size == 0:
                raise LabelError(f"No RDM for ROI {roi!r} at time {t}; every ROI needs an RDM at every time.")
            absent = np.setdiff1d(np.arange(len(subjects)), subject_of_row[idx])
            if absent.size:
                raise LabelError(
                    f"ROI {roi!r}{'' if np.isnan(t) else f' at time {t}'} has no RDM of subject(s) "
                    f"{', '.join(repr(str(subjects[a])) for a in absent)}; every ROI needs every subject."
                )
            blocks.append((roi, float(t)))
            rows.append(idx)
    if not np.isfinite(brain.vectors).all():
        raise DataError("score_layers needs RDMs without missing (NaN) dissimilarities.")
    return _Brain(
        "rdms",
        np.asarray(brain.conditions),
        False,
        blocks,
        rdm_vectors=brain.vectors,
        rdm_rows=rows,
        subjects=subjects,
        subject_of_row=subject_of_row,
        times=None if not np.isfinite(times[0]) else np.asarray(times, dtype=float),
    )


def _align(activations: Any, ids: np.ndarray | None, n_rows: int, brain: _Brain) -> np.ndarray | None:
    """Rows of the activations matching the brain's stimuli (None: already aligned)."""
    n = brain.n_stimuli
    if ids is None or brain.positional:
        if n_rows != n:
            what = "stimuli (rows)" if brain.positional else "conditions (sorted condition labels)"
            raise ShapeError(
                f"activations have {n_rows} stimuli but the brain data have {n} {what}; "
                "they must describe the same stimuli in the same order."
            )
        return None
    if hasattr(activations, "index_of"):  # Activations: its own matching and error message
        return np.asarray(activations.index_of(list(brain.conditions)), dtype=np.intp)
    pos = pd.Index(list(ids), dtype=object).get_indexer(pd.Index(list(brain.conditions), dtype=object))
    if (pos < 0).any():
        missing = brain.conditions[pos < 0]
        shown = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise LabelError(
            f"{len(missing)} brain condition(s) are not among activations.stimulus_ids: {shown}. "
            "Give the activations the condition labels as stimulus ids."
        )
    return pos.astype(np.intp)


def _splits(cv: Any, n_units: int, random_state: Any, what: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sorted (train, test) index pairs over ``n_units`` stimuli or subjects."""
    from sklearn.model_selection import KFold, LeaveOneOut

    if cv is None:
        cv = LeaveOneOut() if what == "subjects" else 5
    if isinstance(cv, str):
        check_choice(cv, ("loo",), "cv")
        cv = LeaveOneOut()
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        if not 2 <= cv <= n_units:
            raise ShapeError(f"cv={cv} folds over {n_units} {what}; choose between 2 and {n_units}.")
        cv = KFold(int(cv), shuffle=True, random_state=random_state)
    if hasattr(cv, "split"):
        try:
            pairs = list(cv.split(np.zeros((n_units, 1))))
        except ValueError as exc:
            raise ShapeError(f"Cannot split {n_units} {what} with cv={cv!r}: {exc}") from exc
    elif isinstance(cv, Iterable):
        pairs = list(cv)
    else:
        raise ShapeError(f"cv must be None, an int, 'loo', a splitter or (train, test) pairs; got {cv!r}.")
    if not pairs:
        raise ShapeError("cv produced no fold.")
    splits = []
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ShapeError(f"Fold {i} of cv is not a (train, test) pair.")
        train, test = (np.asarray(p).ravel() for p in pair)
        for part, idx in (("training", train), ("test", test)):
            if idx.dtype.kind not in "iu" or (idx.size and (idx.min() < 0 or idx.max() >= n_units)):
                raise ShapeError(f"Fold {i}: {part} indices must be integers in [0, {n_units}) ({what}).")
        if np.intersect1d(train, test).size:
            raise ShapeError(f"Fold {i}: training and test {what} overlap.")
        splits.append((np.unique(train).astype(np.intp), np.unique(test).astype(np.intp)))
    return splits


def _check_split_sizes(splits: list, minimum: int, what: str) -> None:
    for i, (train, test) in enumerate(splits):
        for part, idx in (("training", train), ("test", test)):
            if len(idx) < minimum:
                raise ShapeError(
                    f"Fold {i} has {len(idx)} {what} in its {part} split; at least {minimum} are needed "
                    "(use fewer folds)."
                )


def _resolve_method(method: Any, greater_is_better: bool) -> tuple[str, Callable | None, bool]:
    """``(name, metric function or None for rsa/encoding, greater_is_better)``."""
    if callable(method):
        return getattr(method, "__name__", "metric"), method, bool(greater_is_better)
    if not isinstance(method, str):
        raise UnknownNameError(f"method must be a name or a callable metric(X, Y) -> float; got {method!r}.")
    if method in ("rsa", "encoding"):
        return method, None, True
    if method == "cka":
        from neuroenc.similarity.kernel_alignment import cka

        return method, cka, True
    known = _pairwise_metrics()
    if method not in known:
        raise UnknownNameError(
            f"Unknown method {method!r}; choose one of: {', '.join(repr(m) for m in METHODS + tuple(known))}, "
            "or pass a callable metric(X, Y) -> float."
        )
    func, greater = known[method]
    return method, func, greater


def _pairwise_metrics() -> dict[str, tuple[Callable, bool]]:
    """Metrics of :mod:`neuroenc.similarity.all_pairs` -> (pair function, higher is more similar)."""
    try:
        from neuroenc.similarity import all_pairs as pw
    except ImportError:  # pragma: no cover - the module ships with neuroenc
        return {}
    registry = getattr(pw, "_METRICS", {})
    out = {}
    for name in getattr(pw, "METRICS", ()):
        spec = registry.get(name)
        if name not in METHODS and spec is not None:
            out[name] = (spec.function, not spec.distance)
    return out


# ----------------------------------------------------------------------
# scorers: each returns train/test scores (n_folds, n_layers, n_blocks) and
# ceilings (n_folds, 2 splits, n_blocks, 2 bounds), NaN where there is none
def _pairs_within(idx: np.ndarray, n_cond: int) -> np.ndarray:
    """Positions, in the condensed vector of ``n_cond`` conditions, of the pairs among ``idx`` (sorted)."""
    i, j = np.triu_indices(len(idx), k=1)
    a, b = idx[i], idx[j]
    return a * n_cond - a * (a + 1) // 2 + (b - a - 1)


def _group_means(scores: np.ndarray, groups: np.ndarray, keep: np.ndarray) -> float | np.ndarray:
    """Mean over the kept groups of the mean over each group's rows (last axis = rows)."""
    per_group = np.stack([scores[..., groups == g].mean(-1) for g in keep], axis=-1)
    return per_group.mean(-1)


class _RSA:
    def __init__(self, layers, brain: _Brain, opts: dict) -> None:
        self.brain, self.opts = brain, opts
        self.layers = layers

    def layer_vectors(self) -> np.ndarray:
        from neuroenc.rsa.compute import compute_rdm

        out = []
        for name, X in self.layers:
            try:
                out.append(compute_rdm(X, self.opts["rdm_method"], n_jobs=self.opts["n_jobs"]).vectors[0])
            except DataError as exc:
                raise type(exc)(f"Layer {name!r}: {exc}") from exc
        return np.stack(out)

    def brain_vectors(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """``(vectors (n_rows, n_pairs), rows of each block, subject group of each row)``."""
        b = self.brain
        if b.kind == "rdms":
            return b.rdm_vectors, b.rdm_rows, b.subject_of_row
        # one row per (roi, time) block, in the order of brain.blocks
        stacked = np.concatenate([self._pattern_rdms(idx) for idx in b.rois.values()])
        rows = [np.array([k]) for k in range(stacked.shape[0])]
        return stacked, rows, np.zeros(stacked.shape[0], dtype=np.intp)

    def _pattern_rdms(self, idx: np.ndarray, X: np.ndarray | None = None, labels=None, folds=None) -> np.ndarray:
        """Brain RDM vectors of one ROI, one row per time point."""
        from neuroenc.rsa.compute import CROSS_VALIDATED_METHODS, compute_rdm

        method = self.opts["brain_rdm_method"]
        if X is None:
            X, labels, folds = self.brain.observations
            if self.brain.positional:
                labels = np.arange(X.shape[0])
        cv = method in CROSS_VALIDATED_METHODS
        data = X[:, idx]
        data = data[:, :, 0] if data.shape[2] == 1 and self.brain.times is None else data
        rdms = compute_rdm(
            data,
            method,
            conditions=labels,
            folds=folds if cv else None,
            n_jobs=self.opts["n_jobs"],
            **self.opts["brain_rdm_kwargs"],
        )
        return rdms.vectors

    def run(self, splits: list, split_by: str):
        from neuroenc.rsa.comparisons import compare_vectors

        method = self.opts["compare_method"]
        L = self.layer_vectors()
        D, rows, groups = self.brain_vectors()
        n_cond = self.brain.n_stimuli
        n_f, n_b = len(splits), len(rows)
        train = np.full((n_f, L.shape[0], n_b), np.nan)
        test = np.full_like(train, np.nan)
        if split_by == "subjects":
            S = compare_vectors(L, D, method, n_jobs=self.opts["n_jobs"])  # (n_layers, n_rows)
            for f, (tr, te) in enumerate(splits):
                for k, r in enumerate(rows):
                    g = groups[r]
                    train[f, :, k] = _group_means(S[:, r], g, np.intersect1d(tr, g))
                    test[f, :, k] = _group_means(S[:, r], g, np.intersect1d(te, g))
        else:
            for f, split in enumerate(splits):
                for s, idx in enumerate(split):
                    P = _pairs_within(idx, n_cond)
                    S = compare_vectors(L[:, P], D[:, P], method, n_jobs=self.opts["n_jobs"])
                    out = train if s == 0 else test
                    for k, r in enumerate(rows):
                        g = groups[r]
                        out[f, :, k] = _group_means(S[:, r], g, np.unique(g))
        ceilings = self.ceilings(splits, split_by, D, rows, groups)
        return train, test, ceilings

    def ceilings(self, splits, split_by, D, rows, groups) -> np.ndarray:
        n_f, n_b = len(splits), len(rows)
        out = np.full((n_f, 2, n_b, 2), np.nan)
        if not self.opts["ceiling"]:
            return out
        if self.brain.kind == "rdms":
            return self._subject_ceilings(splits, split_by, D, rows, groups, out)
        if self.brain.repeats is not None:
            return self._split_half_ceilings(splits, out)
        return out

    def _subject_ceilings(self, splits, split_by, D, rows, groups, out):
        from neuroenc.rsa import _resampling as rs
        from neuroenc.rsa.ceiling import ceiling_from_vectors
        from neuroenc.rsa.comparisons import compare_vectors

        method = self.opts["compare_method"]
        n_cond = self.brain.n_stimuli
        for k, r in enumerate(rows):
            g_all = groups[r]
            if len(np.unique(g_all)) < 2:
                continue  # a single subject has no ceiling
            Dk = D[r]
            if split_by == "subjects":
                codes = np.unique(g_all, return_inverse=True)[1].ravel()
                pools = rs.loo_pools(rs.pooling_transform(Dk, method), codes, np.ones(len(codes)))
                to_all = compare_vectors(pools[-1:], Dk, method)[0]
                lower = {
                    g: compare_vectors(pools[c : c + 1], Dk[g_all == g], method).mean()
                    for c, g in enumerate(np.unique(g_all))
                }
                upper = {g: to_all[g_all == g].mean() for g in np.unique(g_all)}
                for f, (tr, te) in enumerate(splits):
                    keep_tr = np.isin(g_all, tr)
                    if len(np.unique(g_all[keep_tr])) >= 1:
                        codes_tr = np.unique(g_all[keep_tr], return_inverse=True)[1].ravel()
                        out[f, 0, k] = ceiling_from_vectors(Dk[keep_tr], codes_tr, method)
                    te_groups = np.intersect1d(te, g_all)
                    out[f, 1, k] = (np.mean([lower[g] for g in te_groups]), np.mean([upper[g] for g in te_groups]))
            else:
                codes = np.unique(g_all, return_inverse=True)[1].ravel()
                for f, split in enumerate(splits):
                    for s, idx in enumerate(split):
                        P = _pairs_within(idx, n_cond)
                        out[f, s, k] = ceiling_from_vectors(Dk[:, P], codes, method)
        return out

    def _split_half_ceilings(self, splits, out):
        from neuroenc.rsa.comparisons import compare_vectors
        from neuroenc.rsa.compute import CROSS_VALIDATED_METHODS

        R = self.brain.repeats  # (n_rep, n_cond, n_feat, n_times)
        n_rep, n_cond = R.shape[:2]
        method = self.opts["brain_rdm_method"]
        cv = method in CROSS_VALIDATED_METHODS
        if cv and n_rep < 4:
            warnings.warn(
                f"No RSA noise ceiling: {method} needs 2 repeats in each half, the data have {n_rep} repeats.",
                stacklevel=3,
            )
            return out
        n_splits = 1 if n_rep == 2 else int(self.opts["ceiling_splits"])
        rng = np.random.default_rng(self.opts["random_state"])
        halves_a, halves_b = [], []
        for _ in range(n_splits):
            perm = rng.permutation(n_rep)
            half = n_rep // 2
            vec = []
            for part in (perm[:half], perm[half:]):
                if cv:
                    X = R[part].reshape((-1,) + R.shape[2:])
                    labels = np.tile(np.arange(n_cond), len(part))
                    folds = np.repeat(np.arange(len(part)), n_cond)
                else:
                    X, labels, folds = R[part].mean(0), np.arange(n_cond), None
                vec.append(
                    np.concatenate([self._pattern_rdms(idx, X, labels, folds) for idx in self.brain.rois.values()])
                )
            halves_a.append(vec[0])
            halves_b.append(vec[1])
        A, B = np.stack(halves_a), np.stack(halves_b)  # (n_splits, n_blocks, n_pairs)
        method = self.opts["compare_method"]
        for f, split in enumerate(splits):
            for s, idx in enumerate(split):
                P = _pairs_within(idx, n_cond)
                r = compare_vectors(A[:, :, None, P], B[:, :, None, P], method)[..., 0, 0].mean(0)
                rho = np.clip(2 * r / (1 + r), 0.0, 1.0)
                out[f, s, :, 0] = out[f, s, :, 1] = np.sqrt(rho)
        return out


def _block_columns(brain: _Brain, features: np.ndarray) -> list[np.ndarray]:
    """Columns of each (roi, time) block in the flattened (features x times) target matrix."""
    n_times = brain.means.shape[2]
    pos = {int(f): i for i, f in enumerate(features)}
    cols = []
    times = list(range(n_times))
    for idx in brain.rois.values():
        base = np.array([pos[int(i)] for i in idx]) * n_times
        cols.extend(base + t for t in times)
    return cols


class _Encoding:
    def __init__(self, layers, brain: _Brain, opts: dict) -> None:
        self.layers, self.brain, self.opts = layers, brain, opts

    def run(self, splits: list, split_by: str):
        from sklearn.model_selection import KFold

        from neuroenc.encoding.ridge import RidgeCV
        from neuroenc.encoding.scoring import noise_ceiling, score_targets

        b, o = self.brain, self.opts
        agg = _AGGREGATES[o["aggregate"]]
        features = np.unique(np.concatenate(list(b.rois.values())))
        Y = b.means[:, features].reshape(b.n_stimuli, -1)
        cols = _block_columns(b, features)
        n_f, n_l, n_b = len(splits), len(self.layers), len(cols)
        train = np.full((n_f, n_l, n_b), np.nan)
        test = np.full_like(train, np.nan)
        inner = o["inner_cv"]
        if isinstance(inner, (int, np.integer)) and not isinstance(inner, bool):
            inner = KFold(int(inner), shuffle=True, random_state=o["random_state"])
        alphas = np.asarray(o["alphas"], dtype=np.float64)
        for f, (tr, te) in enumerate(splits):
            for l_, (_, X) in enumerate(self.layers):
                Xtr = np.asarray(X[tr], dtype=np.float64)
                model = RidgeCV(alphas * _total_ss(Xtr), cv=inner, scoring=o["scoring"]).fit(Xtr, Y[tr])
                inner_scores = np.asarray(model.cv_scores_, dtype=float).reshape(-1)
                held_out = score_targets(Y[te], model.predict(np.asarray(X[te], dtype=np.float64)), o["scoring"])
                for k, c in enumerate(cols):
                    train[f, l_, k] = agg(inner_scores[c])
                    test[f, l_, k] = agg(held_out[c])
        ceilings = np.full((n_f, 2, n_b, 2), np.nan)
        if o["ceiling"] and b.repeats is not None:
            R = b.repeats[:, :, features].reshape(b.repeats.shape[0], b.n_stimuli, -1)
            for f, split in enumerate(splits):
                for s, idx in enumerate(split):
                    c_t = noise_ceiling(R[:, idx], o["scoring"], o["ceiling_splits"], o["random_state"])
                    for k, c in enumerate(cols):
                        ceilings[f, s, k] = agg(c_t[c])
        return train, test, ceilings


def _total_ss(X: np.ndarray) -> float:
    """Sum of squares of the centred features; the unit of the relative ridge penalties (1 for a constant layer)."""
    ss = float(((X - X.mean(0)) ** 2).sum())
    return ss if ss > 0 else 1.0


class _Metric:
    def __init__(self, layers, brain: _Brain, opts: dict, func: Callable) -> None:
        self.layers, self.brain, self.opts, self.func = layers, brain, opts, func

    def run(self, splits: list, split_by: str):
        b = self.brain
        kwargs = self.opts["metric_kwargs"]
        n_times = b.means.shape[2]
        blocks = [(idx, t) for idx in b.rois.values() for t in range(n_times)]
        n_f, n_l, n_b = len(splits), len(self.layers), len(blocks)
        train = np.full((n_f, n_l, n_b), np.nan)
        test = np.full_like(train, np.nan)
        for f, split in enumerate(splits):
            for s, idx in enumerate(split):
                out = train if s == 0 else test
                Y = b.means[idx]
                for l_, (name, X) in enumerate(self.layers):
                    Xs = X[idx]
                    for k, (roi_idx, t) in enumerate(blocks):
                        out[f, l_, k] = _as_score(self.func(Xs, Y[:, roi_idx, t], **kwargs), name)
        return train, test, np.full((n_f, 2, n_b, 2), np.nan)


def _as_score(value: Any, layer: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"The metric returned {value!r} for layer {layer!r}; it must return a number.") from exc


# ----------------------------------------------------------------------
# public entry point
def score_layers(
    activations: Any,
    brain: BrainData | RDMs | np.ndarray,
    method: str | Callable[..., float] = "rsa",
    *,
    rois: Any = None,
    cv: Any = None,
    split_by: str = "auto",
    random_state: int | None = 0,
    rdm_method: str = "correlation",
    brain_rdm_method: str | None = None,
    brain_rdm_kwargs: dict | None = None,
    compare_method: str = "spearman",
    rdm_descriptor: str | None = "auto",
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    inner_cv: Any = 5,
    scoring: str = "pearson",
    aggregate: str = "median",
    ceiling: bool = True,
    ceiling_splits: int = 100,
    metric_kwargs: dict | None = None,
    greater_is_better: bool = True,
    n_jobs: int | None = None,
) -> LayerScores:
    """Score every layer against every ROI (and time point), selecting the best layer on held-out data.

    The stimuli (or the subjects of RDM data) are split into folds by
    ``cv``. On each fold every layer is scored on the training split and on
    the held-out (test) split; the layer with the best training score is
    *selected*, and its test score is an unbiased estimate of the best
    layer's score (choosing and scoring on the same data would favour
    whichever layer fits the noise best).

    Methods:

    ``"rsa"``
        Layer RDMs (:func:`neuroenc.rsa.compute.compute_rdm` with
        ``rdm_method`` on the stimuli x units activations) compared with the
        brain RDMs (``brain_rdm_method``, per ROI and time point) by
        :func:`neuroenc.rsa.comparisons.compare` with ``compare_method``, on the
        pairs of stimuli within the split. With several subjects' RDMs the
        score is the mean over subjects (sessions of a subject averaged
        first, as :func:`neuroenc.rsa.inference.evaluate`).
    ``"encoding"``
        A :class:`neuroenc.encoding.RidgeCV` from the layer's units to the
        ROI's features (voxels, channels), fit on the training stimuli (ridge
        penalty chosen per feature by ``inner_cv``), predicting the held-out
        stimuli; each feature's prediction is scored with ``scoring`` and the
        scores are aggregated over the ROI by ``aggregate``. The training
        score is the inner cross-validated score at the chosen penalty.
    ``"cka"``
        :func:`neuroenc.similarity.kernel_alignment.cka` between the layer's and the
        ROI's stimuli x features matrices of the split (``metric_kwargs``
        e.g. ``{"kernel": "rbf", "debiased": True}``).
    callable or metric name
        Any ``metric(X_layer, Y_brain, **metric_kwargs) -> float`` on
        (n_stimuli, n_units) and (n_stimuli, n_features) arrays, or a metric
        name known to :mod:`neuroenc.similarity.all_pairs`.

    Parameters
    ----------
    activations : Activations or dict of str to array-like
        Layer activations, one array (n_stimuli, ...) per layer, in depth
        order (trailing axes are flattened into units). The stimuli of an
        :class:`~neuroenc.activationdata.Activations` are matched to the
        brain's condition labels through its ``stimulus_ids``; the rows of a
        dict's arrays must follow the brain's stimulus order (sorted
        condition labels for a BrainData, the conditions of RDMs, the rows
        of an array).
    brain : BrainData, RDMs or array-like
        A :class:`~neuroenc.braindata.BrainData` (observations averaged per
        ``condition``; 3-D data are scored per time point), an
        :class:`~neuroenc.rsa.rdms.RDMs` (``method="rsa"`` only; one RDM per
        subject, optionally per ``roi``/``time`` metadata value), or an array
        (n_stimuli, n_features[, n_times]) of response patterns.
    method : {"rsa", "encoding", "cka"}, metric name or callable
        How a layer is compared with the brain data (see above).
    rois : dict, str or sequence of str, optional
        Regions of interest. For pattern data, a dict ROI name -> boolean
        mask, feature indices or feature names, or the name of a column of
        ``brain.features`` whose values group the features (default: one ROI
        ``"all"``). For RDMs, the ROI names to keep from their ``roi``
        metadata (default: every ROI).
    cv : None, int, "loo", splitter or iterable of (train, test)
        Folds. None: 5 shuffled folds of the stimuli, or leave one subject
        out when splitting subjects. An int: that many shuffled ``KFold``
        folds (seeded by ``random_state``). A scikit-learn splitter or
        explicit index pairs are used as given.
    split_by : {"auto", "stimuli", "subjects"}
        What the folds hold out. ``"auto"``: subjects for RDMs of two or more
        subjects, stimuli otherwise. Subjects can only be split for RDM data.
    random_state : int or None
        Seed of the fold shuffling, the inner folds and the split halves of
        the noise ceiling.
    rdm_method : str
        Dissimilarity of the layer RDMs (a method of
        :func:`~neuroenc.rsa.compute.compute_rdm`).
    brain_rdm_method : str, optional
        Dissimilarity of the brain RDMs (default ``rdm_method``); a
        cross-validated method (``"crossnobis"``) uses the ``run`` column as
        folds.
    brain_rdm_kwargs : dict, optional
        Extra arguments of :func:`~neuroenc.rsa.compute.compute_rdm` for the
        brain RDMs (e.g. ``{"noise": "shrinkage_diag"}``).
    compare_method : str
        RDM comparison (see :mod:`neuroenc.rsa.comparisons`).
    rdm_descriptor : str or None
        RDM metadata column naming the subject of each RDM (its RDMs are
        averaged and held out together). ``"auto"``: ``"subject"`` when the
        RDMs have that column, otherwise every RDM is a subject.
    alphas : sequence of float
        Ridge penalty candidates of ``"encoding"``, relative to the layer's
        total sum of squares on the training stimuli (the penalty is
        ``alpha * ||X - mean(X)||_F^2``), so that one grid suits layers of
        any width or scale.
    inner_cv : int, splitter or None
        Inner folds choosing the ridge penalty within the training split
        (int: shuffled ``KFold``; None: efficient leave-one-out).
    scoring : {"pearson", "r2"}
        Per-feature score of ``"encoding"``.
    aggregate : {"median", "mean"}
        How ``"encoding"`` summarises the feature scores of a ROI.
    ceiling : bool
        Compute noise ceilings where the data allow: for RDMs of several
        subjects, the lower and upper bounds of Nili et al. (2014) on the same
        split (held-out subjects are compared with the pool of the other
        subjects); for a BrainData with repeated presentations of each
        condition (several observations per condition, e.g. runs; the k-th
        presentations of all conditions form repeat k), the Spearman-Brown
        corrected split-half reliability ``rho`` gives the ceiling
        ``sqrt(rho)`` for Pearson-type scores (RSA: reliability of the brain
        RDM between halves; encoding: :func:`neuroenc.encoding.noise_ceiling`
        per feature). ``normalized_score = score / ceiling`` (lower bound).
        No ceiling for CKA and other metrics.
    ceiling_splits : int
        Random split halves averaged by the split-half ceilings.
    metric_kwargs : dict, optional
        Keyword arguments of the metric (``"cka"``, callables, pairwise names).
    greater_is_better : bool
        For a callable metric: whether higher values mean more similar (False
        for distances; the best layer is then the one with the lowest score).
    n_jobs : int or None
        Threads of the compiled RSA kernels.

    Returns
    -------
    LayerScores
        ``.scores`` (tidy table of every layer's train and test scores),
        ``.best_layer``, ``.selected()``, ``.summary()`` and ``.plot()``.

    Raises
    ------
    UnknownNameError
        Unknown method, ROI, feature, RDM or comparison method names.
    ShapeError
        Activations and brain data describing different numbers of stimuli,
        layers of different lengths, folds too small to score.
    LabelError
        Brain conditions missing from the activations' stimulus ids.
    NonFiniteError
        NaN or Inf in the activations or brain data.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> layers = {f"layer{i}": rng.standard_normal((40, 20)) for i in range(1, 5)}
    >>> voxels = layers["layer3"] @ rng.standard_normal((20, 30)) + rng.standard_normal((40, 30))
    >>> result = score_layers(layers, voxels, "encoding")
    >>> result.best_layer["all"]
    'layer3'
    """
    # ---- everything is checked before any work
    name, func, greater = _resolve_method(method, greater_is_better)
    check_choice(split_by, _SPLIT_BY, "split_by")
    check_choice(aggregate, tuple(_AGGREGATES), "aggregate")
    check_choice(scoring, _SCORINGS, "scoring")
    if metric_kwargs is not None and not isinstance(metric_kwargs, Mapping):
        raise ShapeError("metric_kwargs must be a dict.")
    if brain_rdm_kwargs is not None and not isinstance(brain_rdm_kwargs, Mapping):
        raise ShapeError("brain_rdm_kwargs must be a dict.")
    if isinstance(ceiling_splits, bool) or not isinstance(ceiling_splits, (int, np.integer)) or ceiling_splits < 1:
        raise ShapeError(f"ceiling_splits must be a positive integer, got {ceiling_splits!r}.")
    brain_rdm_method = rdm_method if brain_rdm_method is None else brain_rdm_method
    if name == "rsa":
        from neuroenc.rsa.comparisons import canonical_method
        from neuroenc.rsa.compute import METHODS as RDM_METHODS

        check_choice(rdm_method, RDM_METHODS, "RDM method")
        check_choice(brain_rdm_method, RDM_METHODS, "brain RDM method")
        compare_method = canonical_method(compare_method)
    if name == "encoding":
        alphas = check_array(alphas, "alphas", ndim=1, dtype=np.float64)
        if (alphas <= 0).any():
            raise ShapeError("alphas must be positive.")

    layer_names, arrays, ids = _layers(activations)
    from neuroenc.rsa.rdms import RDMs

    if isinstance(brain, RDMs):
        if name != "rsa":
            raise ShapeError(
                f"RDM data can only be scored with method='rsa'; method {name!r} needs response patterns "
                "(a BrainData or an array)."
            )
        b = _rdms_brain(brain, rois, rdm_descriptor)
    else:
        b = _patterns_brain(brain, rois, need_repeats=bool(ceiling) and name in ("rsa", "encoding"))
    order = _align(activations, ids, arrays[0].shape[0], b)
    if order is not None:
        arrays = [a[order] for a in arrays]
    layers = list(zip(layer_names, arrays))

    if split_by == "auto":
        split_by = "subjects" if b.kind == "rdms" and len(b.subjects) >= 2 else "stimuli"
    if split_by == "subjects":
        if b.kind != "rdms" or len(b.subjects) < 2:
            raise ShapeError("split_by='subjects' needs RDMs of at least 2 subjects.")
        splits = _splits(cv, len(b.subjects), random_state, "subjects")
        _check_split_sizes(splits, 1, "subjects")
    else:
        splits = _splits(cv, b.n_stimuli, random_state, "stimuli")
        _check_split_sizes(splits, _MIN_STIMULI, "stimuli")
        if name == "encoding":
            n_inner = getattr(inner_cv, "n_splits", inner_cv if isinstance(inner_cv, (int, np.integer)) else 2)
            _check_split_sizes([(tr, tr) for tr, _ in splits], max(int(n_inner), _MIN_STIMULI), "stimuli")

    opts = dict(
        rdm_method=rdm_method,
        brain_rdm_method=brain_rdm_method,
        brain_rdm_kwargs=dict(brain_rdm_kwargs or {}),
        compare_method=compare_method,
        alphas=alphas,
        inner_cv=inner_cv,
        scoring=scoring,
        aggregate=aggregate,
        ceiling=bool(ceiling),
        ceiling_splits=int(ceiling_splits),
        metric_kwargs=dict(metric_kwargs or {}),
        random_state=random_state,
        n_jobs=n_jobs,
    )
    # ---- scoring
    if name == "rsa":
        scorer: Any = _RSA(layers, b, opts)
    elif name == "encoding":
        scorer = _Encoding(layers, b, opts)
    else:
        scorer = _Metric(layers, b, opts, func)
    train, test, ceilings = scorer.run(splits, split_by)
    scores, ceiling_table = _tables(train, test, ceilings, layer_names, b.blocks, greater)
    params = dict(opts, alphas=None if name != "encoding" else [float(a) for a in alphas])
    return LayerScores(scores, ceiling_table, name, layer_names, greater, split_by, params)


def _tables(
    train: np.ndarray,
    test: np.ndarray,
    ceilings: np.ndarray,
    layer_names: list[str],
    blocks: list[tuple[Any, float]],
    greater: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tidy score table (with the held-out selection) and the ceiling table."""
    n_f, n_l, n_b = train.shape
    ranked = train if greater else -train
    chosen = np.full((n_f, n_b), -1)
    valid = ~np.isnan(ranked).all(axis=1)
    chosen[valid] = np.nanargmax(np.where(np.isnan(ranked), -np.inf, ranked), axis=1)[valid]
    lower = ceilings[..., 0]  # (n_f, 2, n_b)
    frames = []
    for s, (split, values) in enumerate((("train", train), ("test", test))):
        f, l_, k = np.meshgrid(np.arange(n_f), np.arange(n_l), np.arange(n_b), indexing="ij")
        c = np.broadcast_to(lower[:, s][:, None, :], values.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            norm = np.where(c > 0, values / c, np.nan)
        selected = (chosen[f, k] == l_) if split == "test" else np.zeros(values.shape, dtype=bool)
        frames.append(
            pd.DataFrame(
                {
                    "roi": [blocks[i][0] for i in k.ravel()],
                    "time": [blocks[i][1] for i in k.ravel()],
                    "fold": f.ravel(),
                    "layer": np.asarray(layer_names, dtype=object)[l_.ravel()],
                    "depth": l_.ravel() + 1,
                    "split": split,
                    "score": values.ravel(),
                    "ceiling": c.ravel(),
                    "normalized_score": norm.ravel(),
                    "selected": selected.ravel(),
                }
            )
        )
    scores = pd.concat(frames, ignore_index=True)
    scores = scores.sort_values(["roi", "time", "fold", "depth", "split"], kind="stable", key=_block_order(blocks))
    scores = scores.reset_index(drop=True)
    ceiling_rows = []
    if np.isfinite(ceilings).any():
        for fold in range(n_f):
            for s, split in enumerate(("train", "test")):
                for k, (roi, t) in enumerate(blocks):
                    ceiling_rows.append((roi, t, fold, split, ceilings[fold, s, k, 0], ceilings[fold, s, k, 1]))
    ceiling_table = pd.DataFrame(ceiling_rows, columns=["roi", "time", "fold", "split", "lower", "upper"])
    return scores, ceiling_table


def _block_order(blocks: list[tuple[Any, float]]) -> Callable[[pd.Series], pd.Series]:
    """Sort key keeping the ROIs in the order given (other columns sort naturally)."""
    roi_rank = {roi: i for i, roi in enumerate(dict.fromkeys(r for r, _ in blocks))}

    def key(column: pd.Series) -> pd.Series:
        if column.name == "roi":
            return column.map(roi_rank)
        if column.name == "split":
            return column.map({"train": 0, "test": 1})
        return column

    return key
