"""Result containers of model evaluation: scores, noise ceiling, tests, tidy tables and plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from neuroenc.errors import DataError
from neuroenc.rsa import stats
from neuroenc.rsa.ceiling import NoiseCeiling
from neuroenc.validation import check_choice

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.axes

__all__ = ["RSAResult", "PermutationResult", "BOOTSTRAP_KINDS"]

#: ``RSAResult.kind`` values that hold bootstrap samples.
BOOTSTRAP_KINDS = ("bootstrap_pattern", "bootstrap_rdm", "bootstrap_both")
_KINDS = ("fixed", "crossvalidation") + BOOTSTRAP_KINDS
_TESTS = {"t": "t", "t-test": "t", "bootstrap": "bootstrap"}


@dataclass
class RSAResult:
    """Evaluations of RDM models on data, with their sampling variability.

    Created by :func:`neuroenc.rsa.inference.evaluate` and
    :func:`neuroenc.rsa.models.crossvalidate`.

    Attributes
    ----------
    model_names : list of str
        One name per model.
    method : str
        Comparison method (canonical name).
    kind : str
        ``"fixed"`` (no resampling: the variability across subjects gives the
        standard errors), ``"crossvalidation"`` (scores on held-out
        conditions, averaged per subject over folds; standard errors across
        subjects), or ``"bootstrap_pattern"``, ``"bootstrap_rdm"``,
        ``"bootstrap_both"`` (standard errors from the bootstrap samples).
    scores : numpy.ndarray
        Bootstrap kinds: ``(n_bootstrap, n_models)`` evaluation of each
        sample (NaN for samples with fewer than 3 distinct conditions).
        Otherwise ``(n_units, n_models)`` evaluation per subject (unit).
    ceilings : numpy.ndarray, shape (n, 2)
        Lower and upper noise ceiling per bootstrap sample (bootstrap kinds),
        per fold (cross-validation) or of the data (fixed, one row).
    estimate : numpy.ndarray, shape (n_models,)
        Evaluation on all the data (mean over subjects).
    ceiling_estimate : NoiseCeiling
        Noise ceiling of all the data.
    n_units : int
        Number of resampled units: subjects, conditions, or the smaller of
        the two (``bootstrap_both``); sets the variance correction
        ``n / (n - 1)`` and the degrees of freedom ``n - 1``.
    indices : BootstrapIndices or None
        The resampling indices used.
    fold_scores : numpy.ndarray or None
        Cross-validation: ``(n_folds, n_models)`` mean score per fold.
    weights : dict or None
        Cross-validation: ``(n_folds, n_components)`` fitted weights of each
        weighted model, by name.
    """

    model_names: list[str]
    method: str
    kind: str
    scores: np.ndarray
    ceilings: np.ndarray
    estimate: np.ndarray
    ceiling_estimate: NoiseCeiling
    n_units: int
    indices: Any = None
    fold_scores: np.ndarray | None = None
    weights: dict | None = None
    _var: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_choice(self.kind, _KINDS, "result kind")
        self.scores = np.atleast_2d(np.asarray(self.scores, dtype=float))
        self.ceilings = np.atleast_2d(np.asarray(self.ceilings, dtype=float))

    def __repr__(self) -> str:
        return (
            f"<RSAResult | {len(self.model_names)} model(s), {self.method}, {self.kind}, "
            f"{self.scores.shape[0]} {'samples' if self.is_bootstrap else 'units'}>"
        )

    # ------------------------------------------------------------------
    @property
    def is_bootstrap(self) -> bool:
        """Whether the result holds bootstrap samples."""
        return self.kind in BOOTSTRAP_KINDS

    @property
    def n_models(self) -> int:
        """Number of models."""
        return len(self.model_names)

    @property
    def dof(self) -> int:
        """Degrees of freedom of the t-tests, ``n_units - 1``."""
        return self.n_units - 1

    def _valid(self) -> np.ndarray:
        return self.scores[~np.isnan(self.scores[:, 0])]

    def means(self) -> np.ndarray:
        """Mean evaluation per model: over valid bootstrap samples, or over subjects."""
        if self.is_bootstrap:
            return self._valid().mean(axis=0)
        return np.nanmean(self.scores, axis=0)

    def ceiling(self) -> NoiseCeiling:
        """Noise ceiling: mean over bootstrap samples (or folds), or that of the data."""
        lower, upper = np.nanmean(self.ceilings, axis=0)
        return NoiseCeiling(float(lower), float(upper))

    def variances(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Variances of the mean evaluations, of their pairwise differences and of their distances to the ceiling.

        Bootstrap kinds: covariance of the samples (evaluations and both
        ceiling bounds); otherwise the covariance across subjects divided by
        their number (the ceiling is then taken as fixed). Both are scaled by
        ``n_units / (n_units - 1)`` (see :mod:`neuroenc.rsa.stats`).

        Returns
        -------
        model_var : numpy.ndarray, shape (n_models,)
        diff_var : numpy.ndarray, shape (n_pairs,)
        ceiling_var : numpy.ndarray, shape (n_models, 2)
        """
        if self._var is None:
            k = self.n_models
            if self.is_bootstrap:
                cov = stats.bootstrap_covariance(self.scores, self.ceilings)
                self._var = stats.split_variances(cov, k, self.n_units, ceiling_included=True)
            else:
                units = self.scores
                cov = np.atleast_2d(np.cov(units.T, ddof=0)) / units.shape[0]
                self._var = stats.split_variances(cov, k, self.n_units, ceiling_included=False)
        return self._var

    def sem(self) -> np.ndarray:
        """Standard error of the mean evaluation per model."""
        return np.sqrt(np.maximum(self.variances()[0], 0))

    def ci(self, level: float = 0.95, kind: str = "t") -> tuple[np.ndarray, np.ndarray]:
        """Confidence intervals of the mean evaluations.

        Parameters
        ----------
        level : float
            Coverage, in (0, 1).
        kind : {"t", "percentile"}
            ``"t"``: mean +- t quantile (``dof``) x SEM; ``"percentile"``:
            quantiles of the valid bootstrap samples, framed by -inf and +inf
            as rsatoolbox does (so that too few samples give an infinite
            interval rather than an overconfident one).

        Returns
        -------
        (lower, upper) : tuple of numpy.ndarray
        """
        if not 0 < level < 1:
            raise DataError(f"level must be in (0, 1), got {level!r}.")
        check_choice(kind, ("t", "percentile"), "confidence interval kind")
        cut = (1 - level) / 2
        if kind == "percentile":
            samples = self._bootstrap_samples("percentile intervals")
            framed = np.vstack([np.full((1, self.n_models), -np.inf), np.full((1, self.n_models), np.inf), samples])
            return np.quantile(framed, cut, axis=0), np.quantile(framed, 1 - cut, axis=0)
        from scipy.stats import t

        half = self.sem() * t.ppf(1 - cut, self.dof)
        means = self.means()
        return means - half, means + half

    def _bootstrap_samples(self, what: str) -> np.ndarray:
        if not self.is_bootstrap:
            raise DataError(f"{what} need bootstrap samples; this result is of kind {self.kind!r}.")
        return self._valid()

    def _test(self, test: str) -> str:
        return _TESTS[check_choice(test, _TESTS, "test")]

    # ------------------------------------------------------------------
    # tests
    def p_zero(self, test: str = "t") -> np.ndarray:
        """One-sided p-values of each model scoring above 0 (``"t"`` or ``"bootstrap"``)."""
        if self._test(test) == "bootstrap":
            self._bootstrap_samples("bootstrap tests")
            return stats.bootstrap_test_zero(self.scores)
        return stats.t_test_zero(self.means(), self.variances()[0], self.dof)

    def p_ceiling(self, test: str = "t") -> np.ndarray:
        """p-values of each model differing from the lower noise ceiling.

        ``"t"``: two-sided t-test; ``"bootstrap"``: one-sided, proportion of
        samples in which the model reaches the sample's lower ceiling.
        """
        if self._test(test) == "bootstrap":
            self._bootstrap_samples("bootstrap tests")
            return stats.bootstrap_test_ceiling(self.scores, self.ceilings[:, 0])
        return stats.t_test_ceiling(self.means(), self.variances()[2][:, 0], self.ceiling().lower, self.dof)

    def p_pairwise(self, test: str = "t") -> np.ndarray:
        """Two-sided p-values of the pairwise model differences, pairs ``(i < j)`` in squareform order."""
        if self._test(test) == "bootstrap":
            self._bootstrap_samples("bootstrap tests")
            return stats.bootstrap_test_pairs(self.scores)
        return stats.t_test_pairs(self.means(), self.variances()[1], self.dof)

    def pairwise(self, test: str = "t", correction: str = "fdr", alpha: float = 0.05) -> pd.DataFrame:
        """Tidy table of the pairwise model comparisons.

        Parameters
        ----------
        test : {"t", "bootstrap"}
            t-test on the variance of the differences, or bootstrap test.
        correction : {"fdr", "bonferroni", "holm", "none"}
            Multiple-comparison correction over all pairs.
        alpha : float
            Level for the ``significant`` column.

        Returns
        -------
        pandas.DataFrame
            Columns ``model_a, model_b, difference, se, p, p_corrected,
            significant``; ``difference`` is ``mean(a) - mean(b)``.
        """
        i, j = stats.pair_index(self.n_models)
        means = self.means()
        p = self.p_pairwise(test)
        p_corr = stats.correct_pvalues(p, correction)
        names = np.asarray(self.model_names, dtype=object)
        return pd.DataFrame(
            {
                "model_a": names[i],
                "model_b": names[j],
                "difference": means[i] - means[j],
                "se": np.sqrt(np.maximum(self.variances()[1], 0)),
                "p": p,
                "p_corrected": p_corr,
                "significant": p_corr < alpha,
            }
        )

    # ------------------------------------------------------------------
    def to_frame(
        self, kind: str = "models", *, test: str = "t", ci: float = 0.95, correction: str = "fdr", alpha: float = 0.05
    ) -> pd.DataFrame:
        """Tidy table of the results.

        Parameters
        ----------
        kind : {"models", "pairwise"}
            One row per model, or one row per pair of models
            (:meth:`pairwise`).
        test : {"t", "bootstrap"}
            Test for the p-values.
        ci : float
            Level of the confidence interval (t-based).
        correction, alpha
            For the pairwise table.

        Returns
        -------
        pandas.DataFrame
            ``kind="models"``: ``model, estimate, mean, sem, ci_lower,
            ci_upper, p_zero, p_ceiling, ceiling_lower, ceiling_upper,
            normalized`` (``mean / ceiling_lower``), ``method``, ``kind``.
        """
        check_choice(kind, ("models", "pairwise"), "table kind")
        if kind == "pairwise":
            return self.pairwise(test, correction, alpha)
        from neuroenc.rsa.ceiling import normalize_scores

        means, ceiling = self.means(), self.ceiling()
        low, high = self.ci(ci)
        return pd.DataFrame(
            {
                "model": list(self.model_names),
                "estimate": self.estimate,
                "mean": means,
                "sem": self.sem(),
                "ci_lower": low,
                "ci_upper": high,
                "p_zero": self.p_zero(test),
                "p_ceiling": self.p_ceiling(test),
                "ceiling_lower": ceiling.lower,
                "ceiling_upper": ceiling.upper,
                "normalized": normalize_scores(means, ceiling),
                "method": self.method,
                "kind": self.kind,
            }
        )

    def plot(
        self,
        ax: matplotlib.axes.Axes | None = None,
        *,
        error: str = "sem",
        test: str = "t",
        alpha: float = 0.05,
        correction: str = "fdr",
        sort: bool = False,
        pairwise: bool = True,
        color: str = "#4c72b0",
    ) -> matplotlib.axes.Axes:
        """Bar plot of the model evaluations with the noise ceiling and significance marks.

        Bars show the mean evaluation with SEM (``error="sem"``) or 95 %
        confidence intervals (``"ci"``); the grey band spans the lower to the
        upper noise ceiling. Below a bar, ``*`` marks a model scoring above 0
        (one-sided, Bonferroni over models, as rsatoolbox); a small triangle
        above the bar marks a model significantly below the lower ceiling.
        Above the bars, one line per significant pairwise difference (after
        ``correction``) joins the two models, with a dot on the better one.

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        check_choice(error, ("sem", "ci"), "error bar kind")
        means = self.means()
        order = np.argsort(-means, kind="stable") if sort else np.arange(self.n_models)
        if error == "sem":
            err = np.vstack([self.sem(), self.sem()])
        else:
            low, high = self.ci(0.95)
            err = np.vstack([means - low, high - means])
        if ax is None:
            _, ax = plt.subplots(figsize=(1.0 + 0.7 * self.n_models, 4.5))
        x = np.arange(self.n_models)
        ceiling = self.ceiling()
        ax.axhspan(ceiling.lower, ceiling.upper, color="0.85", zorder=0, label="noise ceiling")
        ax.bar(x, means[order], color=color, zorder=2)
        ax.errorbar(x, means[order], yerr=err[:, order], fmt="none", ecolor="k", capsize=3, zorder=3)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, [self.model_names[k] for k in order], rotation=45, ha="right")
        ax.set_ylabel(f"{self.method} (mean over subjects)")
        top = max(float(np.nanmax(means + err[1])), ceiling.upper)
        span = top - min(0.0, float(np.nanmin(means - err[0])))
        above_zero = self.p_zero(test)[order] < alpha / self.n_models
        below_ceiling = self.p_ceiling(test)[order] < alpha / self.n_models
        for xi, ok in zip(x, above_zero):
            if ok:
                ax.text(xi, 0.01 * span, "*", ha="center", va="bottom", fontsize=12, zorder=4, color="w")
        for xi, ok in zip(x, below_ceiling):
            if ok:
                ax.plot(xi, ceiling.lower + 0.02 * span, marker="v", color="0.4", ms=5, zorder=4)
        if pairwise and self.n_models > 1:
            table = self.pairwise(test, correction, alpha)
            pos = {
                name: int(np.flatnonzero(np.asarray(self.model_names)[order] == name)[0]) for name in self.model_names
            }
            level = top + 0.05 * span
            for row in table[table["significant"]].itertuples():
                a, b = pos[row.model_a], pos[row.model_b]
                better = a if row.difference > 0 else b
                ax.plot([a, b], [level, level], color="0.3", lw=1)
                ax.plot(better, level, "o", color="0.3", ms=3)
                level += 0.035 * span
        ax.set_xlim(-0.6, self.n_models - 0.4)
        return ax


@dataclass
class PermutationResult:
    """Permutation test of condition labels (:func:`neuroenc.rsa.inference.permutation_test`).

    Attributes
    ----------
    model_names : list of str
    method : str
    observed : numpy.ndarray, shape (n_models,)
        Mean evaluation over subjects with the true labels.
    null : numpy.ndarray, shape (n_permutations, n_models)
        The same with the model's conditions permuted.
    pvalues : numpy.ndarray, shape (n_models,)
        One-sided, ``(1 + #{null >= observed}) / (1 + n_permutations)``.
    """

    model_names: list[str]
    method: str
    observed: np.ndarray
    null: np.ndarray
    pvalues: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """One row per model: ``model, observed, null_mean, null_sd, p``."""
        return pd.DataFrame(
            {
                "model": list(self.model_names),
                "observed": self.observed,
                "null_mean": self.null.mean(axis=0),
                "null_sd": self.null.std(axis=0, ddof=1) if len(self.null) > 1 else np.nan,
                "p": self.pvalues,
            }
        )
