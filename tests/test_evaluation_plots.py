"""Evaluation figures: expected artists and labels, valid PNG/SVG files, clear errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from neuroenc.errors import LabelError, MissingFileError, UnknownNameError
from neuroenc.evaluation.plots import meta_analysis_plot, paired_plot, save_figure, score_plot, summary_plot
from neuroenc.evaluation.statistics import compute_dataset_statistics, find_significant_differences

PIPELINES = ["csp", "mdm", "ts"]
SIZES = {"A": 6, "B": 10, "C": 25}


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for dataset, n in SIZES.items():
        for subject in range(1, n + 1):
            base = rng.uniform(0.55, 0.8)
            for session in ("0", "1"):
                for k, pipe in enumerate(PIPELINES):
                    rows.append(
                        {
                            "dataset": dataset,
                            "subject": subject,
                            "session": session,
                            "pipeline": pipe,
                            "score": base + 0.08 * k + 0.02 * rng.normal(),
                            "time": 0.1,
                            "samples": 50,
                        }
                    )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def stats(df) -> pd.DataFrame:
    return compute_dataset_statistics(df, random_state=0)


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def tick_labels(ax, axis: str = "x") -> list[str]:
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks]


def test_score_plot(df):
    fig = score_plot(df)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == list(SIZES)
    for ax, n in zip(visible, SIZES.values()):
        assert tick_labels(ax) == PIPELINES
        assert sum(len(c.get_offsets()) for c in ax.collections) == n * len(PIPELINES)  # one point per subject
    sub = score_plot(df, pipelines=["ts", "csp"])
    assert tick_labels(sub.axes[0]) == ["ts", "csp"]


def test_paired_plot(df):
    fig = paired_plot(df, "csp", "ts")
    (ax,) = fig.axes
    assert ax.get_xlabel() == "csp score" and ax.get_ylabel() == "ts score"
    assert [c.get_label() for c in ax.collections] == list(SIZES)
    assert sum(len(c.get_offsets()) for c in ax.collections) == sum(SIZES.values())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(SIZES)


def test_meta_analysis_plot(stats):
    fig = meta_analysis_plot(stats, "ts", "csp")
    ax, pax = fig.axes
    assert tick_labels(ax, "y") == ["Meta-effect", *SIZES]
    assert len(ax.collections[0].get_segments()) == len(SIZES)  # one interval per dataset
    fw = stats[(stats.pipe1 == "ts") & (stats.pipe2 == "csp")]
    annotated = [t.get_text() for t in pax.texts]
    assert len(annotated) == len(SIZES) + 1
    for p, text in zip(fw["p"], annotated[1:]):
        assert text.startswith(f"{p:.2e}")
    assert annotated[0].endswith("***")  # ts clearly beats csp on every dataset
    P, _ = find_significant_differences(stats)
    assert annotated[0].startswith(f"{P.loc['ts', 'csp']:.2e}")


def test_summary_plot(stats):
    P, T = find_significant_differences(stats)
    fig = summary_plot(P, T)
    ax = fig.axes[0]
    assert tick_labels(ax) == PIPELINES and tick_labels(ax, "y") == PIPELINES
    annotated = texts(fig)
    assert len(annotated) == int((T.to_numpy() > 0).sum())
    assert f"{T.loc['ts', 'csp']:.2f}\np={P.loc['ts', 'csp']:.0e}" in annotated
    image = ax.images[0].get_array()
    assert np.ma.is_masked(image[0, 2])  # csp does not beat ts: left blank
    assert not np.ma.is_masked(image[2, 0])


def test_save_png_and_svg(df, tmp_path):
    fig = score_plot(df)
    png = save_figure(fig, tmp_path / "scores.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = save_figure(fig, tmp_path / "scores.SVG")
    assert ET.parse(svg).getroot().tag.endswith("svg")
    save_figure(fig, tmp_path / "scores.png")  # replaced in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.SVG", "scores.png"]  # no temporary left


def test_save_rejects_bad_targets(df, tmp_path):
    fig = paired_plot(df, "csp", "mdm")
    with pytest.raises(UnknownNameError, match="suffix"):
        save_figure(fig, tmp_path / "scores.jpg")
    with pytest.raises(MissingFileError):
        save_figure(fig, tmp_path / "missing" / "scores.png")
    assert list(tmp_path.iterdir()) == []


def test_bad_input(df, stats):
    with pytest.raises(UnknownNameError, match="'lda'"):
        paired_plot(df, "csp", "lda")
    with pytest.raises(UnknownNameError, match="'lda'"):
        score_plot(df, pipelines=["lda"])
    with pytest.raises(UnknownNameError, match="'lda'"):
        meta_analysis_plot(stats, "lda", "ts")
    with pytest.raises(LabelError, match="twice"):
        meta_analysis_plot(stats, "ts", "ts")
    with pytest.raises(LabelError, match="'score'"):
        score_plot(df.drop(columns="score"))
    with pytest.raises(LabelError, match="'smd'"):
        meta_analysis_plot(stats.drop(columns="smd"), "ts", "csp")
    P, T = find_significant_differences(stats)
    with pytest.raises(LabelError, match="same pipelines"):
        summary_plot(P, T.iloc[:, ::-1])
