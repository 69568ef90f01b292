"""Figures of evaluation results: scores, paired scores, forest plot, significance matrix.

Every function builds a :class:`matplotlib.figure.Figure` directly (no
``pyplot`` state, so any backend, Agg included, works and nothing leaks) and
returns it; :func:`save_figure` writes it as PNG or SVG atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neuroenc._h5 import replaced_atomically
from neuroenc.errors import LabelError, ShapeError
from neuroenc.evaluation.statistics import (
    _STATS_COLUMNS,
    _check_columns,
    collapse_session_scores,
    combine_effects,
    combine_pvalues,
)
from neuroenc.validation import check_choice, check_file, check_names

__all__ = ["score_plot", "paired_plot", "meta_analysis_plot", "summary_plot", "save_figure"]

_FORMATS = {".png": "png", ".svg": "svg"}


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def _pipelines(collapsed: pd.DataFrame, pipelines: Any) -> list:
    available = sorted(collapsed["pipeline"].unique())
    if pipelines is None:
        return available
    return check_names(pipelines, available, "pipeline")


def score_plot(df: pd.DataFrame, pipelines: list[str] | None = None) -> Any:
    """Subject scores per pipeline, one panel per dataset (box plot + points).

    Parameters
    ----------
    df : pandas.DataFrame
        Evaluation results (see :func:`~neuroenc.evaluation.statistics.collapse_session_scores`);
        each point is one subject's score averaged over folds and sessions.
    pipelines : list of str, optional
        Pipelines to show, in this order (default: all, sorted).

    Returns
    -------
    matplotlib.figure.Figure
        One axes per dataset, titled with the dataset name, x tick labels the pipelines.

    Raises
    ------
    LabelError
        Missing columns.
    UnknownNameError
        A requested pipeline is not in the results.
    """
    collapsed = collapse_session_scores(df)
    names = _pipelines(collapsed, pipelines)
    datasets = list(collapsed["dataset"].unique())
    ncols = min(len(datasets), 4)
    nrows = -(-len(datasets) // ncols)
    fig = _figure(max(3.0, 0.9 * len(names)) * ncols, 3.6 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    rng = np.random.default_rng(0)  # fixed jitter: the same results give the same picture
    for ax, dataset in zip(axes.ravel(), datasets):
        rows = collapsed[collapsed["dataset"] == dataset]
        values = [rows.loc[rows["pipeline"] == name, "score"].to_numpy() for name in names]
        positions = np.arange(len(names))
        present = [k for k, v in enumerate(values) if v.size]
        ax.boxplot([values[k] for k in present], positions=positions[present], widths=0.5, showfliers=False)
        for k in present:
            jitter = rng.uniform(-0.12, 0.12, size=values[k].size)
            ax.scatter(positions[k] + jitter, values[k], s=14, alpha=0.7, color=f"C{k % 10}", zorder=3)
        ax.set_xticks(positions, [str(n) for n in names], rotation=30, ha="right")
        ax.set_title(str(dataset))
        ax.grid(axis="y", alpha=0.3)
    for ax in axes.ravel()[len(datasets) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("score")
    return fig


def paired_plot(df: pd.DataFrame, pipe1: str, pipe2: str) -> Any:
    """Subject scores of two pipelines against each other, coloured by dataset.

    Parameters
    ----------
    df : pandas.DataFrame
        Evaluation results.
    pipe1, pipe2 : str
        Pipelines on the x and y axes. Points above the diagonal favour ``pipe2``.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    LabelError
        Missing columns, or the two pipelines share no subject.
    UnknownNameError
        A pipeline is not in the results.
    """
    collapsed = collapse_session_scores(df)
    _pipelines(collapsed, [pipe1, pipe2])
    wide = collapsed.pivot_table(index=["dataset", "subject"], columns="pipeline", values="score", sort=False)
    both = wide[[pipe1, pipe2]].dropna()
    if both.empty:
        raise LabelError(f"pipelines {pipe1!r} and {pipe2!r} share no (dataset, subject) to pair.")
    fig = _figure(5.5, 5.0)
    ax = fig.add_subplot()
    for k, (dataset, rows) in enumerate(both.groupby(level="dataset", sort=False)):
        ax.scatter(rows[pipe1], rows[pipe2], s=22, alpha=0.8, color=f"C{k % 10}", label=str(dataset))
    low = float(min(both.min().min(), 0.5))
    high = float(max(both.max().max(), 1.0))
    pad = 0.02 * (high - low)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], "--", color="0.5", lw=1)
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_aspect("equal")
    ax.set_xlabel(f"{pipe1} score")
    ax.set_ylabel(f"{pipe2} score")
    ax.legend(title="dataset", fontsize="small")
    return fig


def _pair_rows(stats: pd.DataFrame, first: str, second: str) -> pd.DataFrame:
    rows = stats[(stats["pipe1"] == first) & (stats["pipe2"] == second)]
    return rows.set_index("dataset")


def meta_analysis_plot(stats: pd.DataFrame, alg1: str, alg2: str) -> Any:
    """Forest plot of the standardised mean difference ``alg1 - alg2`` per dataset and combined.

    Each dataset row shows its effect with a one-sided 95 % interval
    (``t(0.95, n - 1) / sqrt(n)``, as MOABB); the top row is the combined
    effect (weights ``sqrt(n)``). The right column gives the one-tailed
    p-value in the direction of the effect, with stars below 0.05.

    Parameters
    ----------
    stats : pandas.DataFrame
        Output of :func:`~neuroenc.evaluation.statistics.compute_dataset_statistics`.
    alg1, alg2 : str
        The two pipelines; positive effects favour ``alg1``.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the forest plot (y tick labels ``"Meta-effect"`` then the
        datasets) and the p-value column (one text per row).

    Raises
    ------
    LabelError
        Missing columns or the same pipeline twice.
    UnknownNameError
        A pipeline is not in ``stats``.
    """
    import scipy.stats

    stats = _check_columns(stats, _STATS_COLUMNS, "stats")
    check_names([alg1, alg2], stats["pipe1"].unique(), "pipeline")
    if alg1 == alg2:
        raise LabelError(f"meta_analysis_plot compares two different pipelines; got {alg1!r} twice.")
    forward = _pair_rows(stats, alg1, alg2)
    backward = _pair_rows(stats, alg2, alg1).reindex(forward.index)
    if forward.empty:
        raise LabelError(f"no dataset has results for both {alg1!r} and {alg2!r}.")
    effects = forward["smd"].to_numpy(dtype=float)
    nsub = forward["nsub"].to_numpy(dtype=float)
    # p-value of the direction the effect points to.
    pvals = np.where(effects > 0, forward["p"].to_numpy(), backward["p"].to_numpy())
    half_width = scipy.stats.t.ppf(0.95, nsub - 1) / np.sqrt(nsub)
    meta = combine_effects(effects, nsub)
    meta_p = combine_pvalues(forward["p"] if meta > 0 else backward["p"], nsub)

    labels = ["Meta-effect"] + [str(d) for d in forward.index]
    fig = _figure(8.0, max(3.0, 0.55 * (len(labels) + 2)))
    ax, pax = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [4, 1]})
    rows = np.arange(1, len(effects) + 1)
    finite = np.isfinite(effects)
    ax.hlines(rows[finite], (effects - half_width)[finite], (effects + half_width)[finite], color="C0")
    ax.scatter(effects[finite], rows[finite], marker="D", s=30, color="C0", zorder=3)
    ax.scatter([meta], [0], marker="D", s=60, color="C3", zorder=3)
    ax.axvline(0, ls="--", color="0.5", lw=1)
    ax.axhline(0.5, color="0.2", lw=1.5)
    ax.set_yticks(np.arange(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("standardised mean difference")
    ax.set_title(f"{alg1} vs {alg2}  (> 0: {alg1} better)")
    reach = np.abs(np.concatenate([effects[finite] + half_width[finite], effects[finite] - half_width[finite], [meta]]))
    reach = reach[np.isfinite(reach)]
    span = 1.25 * (reach.max() if reach.size and reach.max() > 0 else 1.0)
    ax.set_xlim(-span, span)
    pax.set_title("p-value")
    pax.set_xlim(-1, 1)
    pax.axis("off")
    for row, p in zip(np.r_[0, rows], np.r_[meta_p, pvals]):
        pax.text(0, row, f"{p:.2e}{_stars(p)}", ha="center", va="center", fontsize="small")
    return fig


def summary_plot(sig: pd.DataFrame, effect: pd.DataFrame, p_threshold: float = 0.05) -> Any:
    """Significance matrix: colour ``-log10 p`` where the row pipeline beats the column one.

    Parameters
    ----------
    sig : pandas.DataFrame
        Combined p-values, pipelines x pipelines (first output of
        :func:`~neuroenc.evaluation.statistics.find_significant_differences`).
    effect : pandas.DataFrame
        Combined effects with the same rows and columns (second output).
    p_threshold : float
        Cells with a positive effect and ``p < p_threshold`` are coloured.

    Returns
    -------
    matplotlib.figure.Figure
        An image with x and y tick labels the pipelines; every cell with a
        positive effect is annotated ``"<smd>\\np=<p>"``.

    Raises
    ------
    LabelError
        ``sig`` and ``effect`` are not square with the same labels.
    """
    for name, frame in (("sig", sig), ("effect", effect)):
        if not isinstance(frame, pd.DataFrame) or list(frame.index) != list(frame.columns):
            raise LabelError(f"{name} must be a square DataFrame with the same pipelines as index and columns.")
    if list(sig.index) != list(effect.index):
        raise LabelError("sig and effect must list the same pipelines in the same order.")
    if len(sig.index) < 2:
        raise ShapeError(f"summary_plot needs at least 2 pipelines, got {len(sig.index)}.")
    P = sig.to_numpy(dtype=float)
    T = effect.to_numpy(dtype=float)
    better = T > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        strength = np.where(better & (P < p_threshold), -np.log10(P), np.nan)
    names = [str(n) for n in sig.index]
    k = len(names)
    fig = _figure(1.2 * k + 2.5, 1.1 * k + 1.5)
    ax = fig.add_subplot()
    image = ax.imshow(strength, cmap="viridis_r", vmin=-np.log10(p_threshold), aspect="equal")
    fig.colorbar(image, ax=ax, label="-log10 p (row > column)", shrink=0.8)
    for a in range(k):
        for b in range(k):
            if a != b and better[a, b]:
                ax.text(b, a, f"{T[a, b]:.2f}\np={P[a, b]:.0e}", ha="center", va="center", fontsize="x-small")
    ax.set_xticks(np.arange(k), names, rotation=45, ha="right")
    ax.set_yticks(np.arange(k), names)
    ax.set_xlabel("compared with")
    ax.set_ylabel("pipeline")
    ax.set_title("Algorithm comparison (effect, combined p)")
    return fig


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: float | None = None) -> Path:
    """Write ``fig`` as PNG or SVG (chosen by the suffix), atomically.

    The image goes to a temporary file in the same folder, renamed over
    ``path`` only once complete, so a reader never sees a partial file.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to write.
    path : str or os.PathLike
        Destination ending in ``.png`` or ``.svg``; its folder must exist.
    dpi : float, optional
        Resolution of PNG output (matplotlib's default otherwise).

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    UnknownNameError
        Another suffix.
    MissingFileError
        The folder does not exist.
    """
    target = Path(path).expanduser()
    fmt = _FORMATS[check_choice(target.suffix.lower(), list(_FORMATS), "figure suffix")]
    if not hasattr(fig, "savefig"):
        raise LabelError(f"fig must be a matplotlib Figure, got {type(fig).__name__}.")
    check_file(target.parent, "output folder")
    with replaced_atomically(target) as tmp, open(tmp, "wb") as stream:
        fig.savefig(stream, format=fmt, dpi=dpi)
    return target
