"""MOABB-style evaluations: splits, runs, results store, statistics and plots.

Names are imported on first use so that ``import neuroenc.evaluation`` does not
load scikit-learn, MNE, MOABB or matplotlib.
"""

from __future__ import annotations

from neuroenc._lazy import lazy_exports

_EXPORTS = {
    "WithinSession": "evaluations",
    "CrossSession": "evaluations",
    "CrossSubject": "evaluations",
    "WithinSubject": "evaluations",
    "pearson_r_score": "evaluations",
    "Split": "splits",
    "within_session_splits": "splits",
    "cross_session_splits": "splits",
    "within_subject_splits": "splits",
    "cross_subject_splits": "splits",
    "ResultsStore": "store",
    "pipeline_digest": "store",
    "KEY_COLUMNS": "store",
    "VALUE_COLUMNS": "store",
    "collapse_session_scores": "statistics",
    "permutation_paired_t": "statistics",
    "wilcoxon": "statistics",
    "standardised_mean_difference": "statistics",
    "compute_dataset_statistics": "statistics",
    "combine_effects": "statistics",
    "combine_pvalues": "statistics",
    "find_significant_differences": "statistics",
    "load_pipelines": "pipelines",
    "build_estimator": "pipelines",
    "dask_client": "scaleout",
    "run_tasks": "scaleout",
    "score_plot": "plots",
    "paired_plot": "plots",
    "meta_analysis_plot": "plots",
    "summary_plot": "plots",
    "save_figure": "plots",
}

__all__, __getattr__, __dir__ = lazy_exports("neuroenc.evaluation", _EXPORTS, globals())
