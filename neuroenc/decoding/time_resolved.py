"""Time-resolved decoding: one estimator per time point, and temporal generalisation.

:class:`SlidingDecoder` fits a clone of a scikit-learn estimator at every
time point of epochs ``(n_epochs, n_channels, n_times)``;
:class:`GeneralizingDecoder` also tests the estimator trained at time ``t`` on
every other time ``t'`` (King & Dehaene 2014). Scores are those of MNE's
``SlidingEstimator`` / ``GeneralizingEstimator`` with the same folds
(:func:`cross_val_time_score` is ``mne.decoding.cross_val_multiscore``).

Speed comes from two batched paths, used whenever they give the same numbers:

* **fitting**: linear discriminant analysis (``solver="svd"`` or ``"lsqr"``
  with any shrinkage), ``Ridge`` and ``RidgeClassifier``, optionally after
  ``StandardScaler`` steps in a ``Pipeline``, are fitted at all time points at
  once with stacked (batched) LAPACK calls that follow scikit-learn's
  definitions; any other estimator is cloned and fitted per time point;
* **prediction**: the coefficients of linear models (the models above, and
  fitted ``LogisticRegression``, ``LinearSVC``, ``Lasso``... folded through
  their ``StandardScaler``) are stacked, so the decision values of every
  (train time, test time) pair come from one matrix product, and accuracy,
  balanced accuracy, ROC AUC, R² and (negative) mean squared / absolute
  errors are computed for all pairs at once. Other scorers are evaluated per
  pair on those predictions; other estimators predict per training time on
  the stacked test times (as MNE does).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, RegressorMixin, clone, is_classifier
from sklearn.utils.validation import check_is_fitted

from neuroenc._kernels.parallel import run_chunks, single_threaded_blas
from neuroenc.errors import LabelError, ShapeError
from neuroenc.validation import check_array, check_epochs, check_length, check_names

__all__ = ["SlidingDecoder", "GeneralizingDecoder", "cross_val_time_score"]

#: upper bound of one block of generalisation responses (train times are chunked to fit).
_BLOCK_BYTES = 128 * 2**20


# --------------------------------------------------------------------------- inputs


def _default_labels(X: Any) -> Any:
    """The conditions of a BrainData or the event codes of an mne.Epochs (None otherwise)."""
    if hasattr(X, "conditions") and hasattr(X, "obs"):
        return X.conditions
    if hasattr(X, "events") and hasattr(X, "get_data"):
        return X.events[:, 2]
    return None


def _labels(X: Any, y: Any, n: int) -> np.ndarray:
    """Labels or targets of the ``n`` epochs of ``X``."""
    if y is None:
        y = _default_labels(X)
    if y is None:
        raise LabelError("y is required (or pass a BrainData / mne.Epochs, whose conditions / event codes are used).")
    y = np.asarray(y)
    if y.ndim not in (1, 2):
        raise LabelError(f"y must be 1-D (one label per epoch) or 2-D (several targets), got shape {y.shape}.")
    check_length(n, y, "y", of="epochs")
    if y.dtype.kind in "fc":
        check_array(y, "y", ndim=(1, 2))
    return y


def _epochs_and_labels(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Epochs (n_epochs, n_channels, n_times) and their labels."""
    X3 = check_epochs(X, "X")
    return X3, _labels(X, y, len(X3))


def _groups(X: Any, groups: Any, n: int) -> np.ndarray | None:
    """Group of each epoch; a string names a column of a BrainData's ``obs``."""
    if groups is None:
        return None
    if isinstance(groups, str):
        if not hasattr(X, "obs"):
            raise LabelError(f"groups={groups!r} names an obs column, but X is not a BrainData.")
        check_names(groups, X.obs.columns, "obs column")
        return X.obs[groups].to_numpy()
    groups = np.asarray(groups)
    check_length(n, groups, "groups", of="epochs")
    return groups


# --------------------------------------------------------------------------- linear models


def _linear_types() -> dict[type, bool]:
    """Estimators predicting ``X @ coef_.T + intercept_`` -> whether predict_proba is expit/softmax of it."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import (
        ElasticNet,
        Lasso,
        LinearRegression,
        LogisticRegression,
        LogisticRegressionCV,
        Ridge,
        RidgeClassifier,
        RidgeClassifierCV,
        SGDClassifier,
        SGDRegressor,
    )
    from sklearn.linear_model import RidgeCV as SkRidgeCV
    from sklearn.svm import LinearSVC, LinearSVR

    types = dict.fromkeys(
        (ElasticNet, Lasso, LinearRegression, Ridge, RidgeClassifier, RidgeClassifierCV, SGDClassifier, SGDRegressor),
        False,
    )
    types.update(dict.fromkeys((SkRidgeCV, LinearSVC, LinearSVR), False))
    try:
        from neuroenc.encoding.ridge import RidgeCV
    except ImportError:  # pragma: no cover - the encoding package is optional here
        pass
    else:
        types[RidgeCV] = False
    types.update(dict.fromkeys((LinearDiscriminantAnalysis, LogisticRegression, LogisticRegressionCV), True))
    return types


def _steps(estimator: Any) -> list[Any]:
    """Steps of a Pipeline (without passthrough steps), or ``[estimator]``."""
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        return [s for _, s in estimator.steps if s is not None and s != "passthrough"]
    return [estimator]


@dataclass
class _LinearStack:
    """Affine models of all time points: ``decision[t] = X @ coef[t].T + intercept[t]``."""

    coef: np.ndarray  # (n_times, n_outputs, n_channels)
    intercept: np.ndarray  # (n_times, n_outputs)
    classes: np.ndarray | None  # None for regressors
    proba: bool  # predict_proba is expit (one output) / softmax of the decision

    def decision(self, X3: np.ndarray, train: slice, generalize: bool) -> np.ndarray:
        """(E, n_train[, n_test], n_outputs) decision values of the training times ``train``."""
        coef, icpt = self.coef[train], self.intercept[train]
        if not generalize:  # time t of X with model t: a batch of (E x C) @ (C x K) products
            out = np.matmul(X3[:, :, train].transpose(2, 0, 1), coef.transpose(0, 2, 1))
            return out.transpose(1, 0, 2) + icpt
        n_epochs, n_ch, n_test = X3.shape
        stacked = X3.transpose(0, 2, 1).reshape(n_epochs * n_test, n_ch)
        out = stacked @ coef.reshape(-1, n_ch).T  # every (test time, model) pair in one product
        out = out.reshape(n_epochs, n_test, len(coef), coef.shape[1]).transpose(0, 2, 1, 3)
        return out + icpt[None, :, None, :]


def _stack_from_estimators(estimators: list[Any]) -> _LinearStack | None:
    """Stack the coefficients of fitted linear estimators (through their StandardScaler steps)."""
    from sklearn.preprocessing import StandardScaler

    steps = _steps(estimators[0])
    types = _linear_types()
    if type(steps[-1]) not in types or any(type(s) is not StandardScaler for s in steps[:-1]):
        return None
    coefs, icpts = [], []
    for est in estimators:
        *scalers, final = _steps(est)
        coef = np.atleast_2d(np.asarray(final.coef_, dtype=np.float64))
        icpt = np.broadcast_to(np.asarray(final.intercept_, dtype=np.float64), coef.shape[:1]).copy()
        for sc in reversed(scalers):  # fold x' = (x - mean) / scale into the affine map
            if sc.scale_ is not None:
                coef = coef / sc.scale_
            if sc.mean_ is not None and sc.with_mean:
                icpt = icpt - coef @ sc.mean_
        coefs.append(coef)
        icpts.append(icpt)
    classes = getattr(estimators[0], "classes_", None)
    if classes is not None and any(not np.array_equal(e.classes_, classes) for e in estimators[1:]):
        return None
    proba = types[type(steps[-1])]
    if proba and classes is not None and len(classes) > 2 and "multi_class" in steps[-1].get_params():
        proba = False  # scikit-learn < 1.8 may normalise one-vs-rest sigmoids instead of a softmax
    return _LinearStack(np.stack(coefs), np.stack(icpts), classes, proba)


# ---- batched fits (scikit-learn's definitions, all time points at once)


def _class_index(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(classes, index of each sample's class, counts)."""
    classes, idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    return classes, idx.ravel(), counts


def _standardize(X: np.ndarray, scaler: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``StandardScaler`` at every time point of X (T, E, C): (scaled X, mean, scale)."""
    n = X.shape[1]
    mean = X.mean(axis=1)
    var = X.var(axis=1)
    # scikit-learn's near-constant test (_is_constant_feature) -> unit scale
    eps = np.finfo(np.float64).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2
    scale = np.where(constant, 1.0, np.sqrt(var)) if scaler.with_std else np.ones_like(var)
    if not scaler.with_mean:
        mean = np.zeros_like(mean)
    return (X - mean[:, None]) / scale[:, None], mean, scale


def _ledoit_wolf(Xc: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf covariances of centred samples Xc (T, n, C) (scikit-learn's ``ledoit_wolf``)."""
    n, p = Xc.shape[1], Xc.shape[2]
    emp = np.matmul(Xc.transpose(0, 2, 1), Xc) / n
    trace = np.trace(emp, axis1=1, axis2=2)
    mu = trace / p
    beta_ = ((Xc**2).sum(axis=2) ** 2).sum(axis=1)  # sum of <X2.T, X2>
    delta_ = (emp**2).sum(axis=(1, 2))  # sum of squared <X.T, X> / n**2
    beta = (beta_ / n - delta_) / (p * n)
    delta = (delta_ - 2.0 * mu * trace + p * mu**2) / p
    beta = np.minimum(beta, delta)
    with np.errstate(invalid="ignore", divide="ignore"):
        shrink = np.where(beta == 0, 0.0, beta / delta)
    return _shrunk(emp, shrink)


def _shrunk(emp: np.ndarray, shrinkage: Any) -> np.ndarray:
    """``(1 - s) C + s tr(C) / p I`` for a batch of covariances."""
    p = emp.shape[-1]
    s = np.broadcast_to(np.asarray(shrinkage, dtype=np.float64), emp.shape[:1])
    mu = np.trace(emp, axis1=1, axis2=2) / p
    return (1.0 - s)[:, None, None] * emp + (s * mu)[:, None, None] * np.eye(p)


def _class_cov(X: np.ndarray, idx: np.ndarray, priors: np.ndarray, shrinkage: Any) -> np.ndarray:
    """Prior-weighted within-class covariance at every time point (LDA's ``_class_cov``)."""
    cov = np.zeros((X.shape[0], X.shape[2], X.shape[2]))
    for k, prior in enumerate(priors):
        Xk = X[:, idx == k]
        mean = Xk.mean(axis=1)
        Xk = Xk - mean[:, None]
        if isinstance(shrinkage, str) and shrinkage == "auto":
            # Ledoit-Wolf on standardised features, rescaled (scikit-learn's _cov)
            n = Xk.shape[1]
            var = (Xk**2).mean(axis=1)
            eps = np.finfo(np.float64).eps
            scale = np.where(var <= n * eps * var + (n * mean * eps) ** 2, 1.0, np.sqrt(var))
            ck = _ledoit_wolf(Xk / scale[:, None]) * scale[:, :, None] * scale[:, None, :]
        else:
            ck = np.matmul(Xk.transpose(0, 2, 1), Xk) / Xk.shape[1]
            if shrinkage not in (None, "empirical"):
                ck = _shrunk(ck, shrinkage)
        cov += prior * ck
    return cov


def _lstsq(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Minimum-norm least-squares solutions of a batch of systems (``scipy.linalg.lstsq`` cutoff)."""
    U, S, Vt = np.linalg.svd(A)
    cutoff = np.finfo(np.float64).eps * S[:, :1]
    inv = np.where(S > cutoff, 1.0 / np.where(S > 0, S, 1.0), 0.0)
    return np.matmul(Vt.transpose(0, 2, 1), inv[:, :, None] * np.matmul(U.transpose(0, 2, 1), B))


def _fit_lda(est: Any, X: np.ndarray, y: np.ndarray):
    """LinearDiscriminantAnalysis (``svd`` or ``lsqr``) at every time point; None if not handled here."""
    if est.covariance_estimator is not None or est.priors is not None or y.ndim != 1:
        return None
    classes, idx, counts = _class_index(y)
    n, n_classes = len(y), len(classes)
    if n_classes < 2 or n <= n_classes:
        return None  # scikit-learn raises; let it
    priors = counts / n
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), idx] = 1.0 / counts[idx]
    means = np.einsum("ek,tec->tkc", onehot, X)  # (T, K, C)
    if est.solver == "svd" and est.shrinkage is None:
        coef, icpt = _lda_svd(X, idx, means, priors, float(est.tol))
    elif est.solver == "lsqr" and (est.shrinkage is None or isinstance(est.shrinkage, str) or 0 <= est.shrinkage <= 1):
        if isinstance(est.shrinkage, str) and est.shrinkage not in ("auto", "empirical"):
            return None
        cov = _class_cov(X, idx, priors, est.shrinkage)
        coef = _lstsq(cov, means.transpose(0, 2, 1)).transpose(0, 2, 1)
        icpt = -0.5 * np.einsum("tkc,tkc->tk", means, coef) + np.log(priors)
    else:
        return None
    if n_classes == 2:
        coef, icpt = coef[:, 1:] - coef[:, :1], icpt[:, 1:] - icpt[:, :1]
    return coef, icpt, classes


def _lda_svd(X: np.ndarray, idx: np.ndarray, means: np.ndarray, priors: np.ndarray, tol: float):
    """LDA's ``svd`` solver at every time point.

    When nothing is truncated (every singular value of the scaled
    within-class data above ``tol``, every non-null one of the between-class
    matrix above ``tol`` times the largest), the solver's weights reduce to
    ``(means - xbar) @ inv(Sw)`` with ``Sw`` the within-class covariance; that
    costs one batched inverse instead of a batched SVD. The time points
    where that is not certain (within a safety margin) take the SVD route.
    """
    n, n_classes = X.shape[1], means.shape[1]
    Xc = X - means[:, idx]
    std = Xc.std(axis=1)
    std[std == 0] = 1.0
    xbar = np.einsum("k,tkc->tc", priors, means)
    centred = means - xbar[:, None]
    weight = np.sqrt(n * priors / max(n_classes - 1, 1))
    coef = icpt = None
    ok = np.zeros(len(X), bool)
    Z = Xc / std[:, None]
    scaled = np.matmul(Z.transpose(0, 2, 1), Z) / n  # within-class correlation: singular values of Z**2
    try:
        inv = np.linalg.inv(scaled)
    except np.linalg.LinAlgError:
        inv = None
    if inv is not None:
        # 1 / ||inv||_F bounds the smallest eigenvalue from below: all singular values of Z exceed 2 tol
        ok = np.isfinite(inv).all(axis=(1, 2)) & (np.sqrt((inv**2).sum(axis=(1, 2))) < 0.25 / tol**2)
        coef = centred @ (inv / std[:, :, None] / std[:, None, :])
        gram = centred @ coef.transpose(0, 2, 1)  # (T, K, K)
        eig = np.linalg.eigvalsh(weight[:, None] * gram * weight[None, :])  # squared between singular values
        top = eig[:, -1:]
        ok &= (top[:, 0] > 0) & (eig[:, 0] <= 1e-10 * top[:, 0]) & (eig[:, 1:] > 1e-6 * top).all(axis=1)
        icpt = -0.5 * np.einsum("tkk->tk", gram) + np.log(priors) - np.einsum("tc,tkc->tk", xbar, coef)
    if not ok.all():
        bad = ~ok
        slow = _lda_svd_truncated(Xc[bad], std[bad], centred[bad], xbar[bad], priors, weight, tol)
        if coef is None:
            coef, icpt = slow
        else:
            coef[bad], icpt[bad] = slow
    return coef, icpt


def _lda_svd_truncated(Xc, std, centred, xbar, priors, weight, tol):
    """LDA's ``svd`` solver with every rank truncation written as a mask, batched over time."""
    n = Xc.shape[1]
    _, S, Vt = np.linalg.svd(Xc / std[:, None] / np.sqrt(n), full_matrices=False)
    inv = np.where(S > tol, 1.0 / np.where(S > 0, S, 1.0), 0.0)
    scalings = (Vt / std[:, None, :]).transpose(0, 2, 1) * inv[:, None, :]  # (T, C, r); dropped columns are 0
    between = weight[None, :, None] * centred @ scalings
    _, S2, Vt2 = np.linalg.svd(between, full_matrices=False)
    keep = S2 > tol * S2[:, :1]
    scalings = scalings @ (Vt2 * keep[:, :, None]).transpose(0, 2, 1)
    proj = centred @ scalings
    icpt = -0.5 * (proj**2).sum(axis=2) + np.log(priors)
    coef = proj @ scalings.transpose(0, 2, 1)
    icpt = icpt - np.einsum("tc,tkc->tk", xbar, coef)
    return coef, icpt


def _fit_ridge(est: Any, X: np.ndarray, y: np.ndarray, classifier: bool):
    """Ridge / RidgeClassifier (exact solvers) at every time point; None if not handled here."""
    alpha = np.asarray(est.alpha, dtype=np.float64)
    if alpha.ndim or not alpha > 0 or est.positive or est.solver not in ("auto", "cholesky", "svd"):
        return None
    classes = None
    if classifier:
        if est.class_weight is not None or y.ndim != 1:
            return None
        classes, idx, _ = _class_index(y)
        if len(classes) < 2:
            return None
        Y = np.where(idx[:, None] == np.arange(len(classes)), 1.0, -1.0)  # LabelBinarizer(-1, 1)
        if len(classes) == 2:
            Y = Y[:, 1:]
    else:
        if y.dtype.kind not in "fiub":
            return None
        Y = y.astype(np.float64).reshape(len(y), -1)
    x_mean = X.mean(axis=1) if est.fit_intercept else np.zeros((X.shape[0], X.shape[2]))
    y_mean = Y.mean(axis=0) if est.fit_intercept else np.zeros(Y.shape[1])
    Xc = X - x_mean[:, None]
    gram = np.matmul(Xc.transpose(0, 2, 1), Xc) + float(alpha) * np.eye(X.shape[2])
    coef = np.linalg.solve(gram, np.matmul(Xc.transpose(0, 2, 1), Y - y_mean)).transpose(0, 2, 1)
    icpt = y_mean - np.einsum("tkc,tc->tk", coef, x_mean)
    return coef, icpt, classes


def _batched_fit(estimator: Any, Xt: np.ndarray, y: np.ndarray) -> _LinearStack | None:
    """All time points of ``Xt`` (T, E, C) at once, if ``estimator`` is one of the batched models."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import Ridge, RidgeClassifier
    from sklearn.preprocessing import StandardScaler

    *scalers, final = _steps(estimator)
    if any(type(s) is not StandardScaler for s in scalers):
        return None
    fitters: dict[type, Callable] = {
        LinearDiscriminantAnalysis: _fit_lda,
        Ridge: lambda e, X, y: _fit_ridge(e, X, y, classifier=False),
        RidgeClassifier: lambda e, X, y: _fit_ridge(e, X, y, classifier=True),
    }
    fitter = fitters.get(type(final))
    if fitter is None:
        return None
    shift = np.zeros((Xt.shape[0], Xt.shape[2]))
    scale = np.ones_like(shift)
    for sc in scalers:  # compose the scalers into x'' = (x - shift) / scale
        Xt, m, s = _standardize(Xt, sc)
        shift, scale = shift + m * scale, scale * s
    fitted = fitter(final, Xt, y)
    if fitted is None:
        return None
    coef, icpt, classes = fitted
    coef = coef / scale[:, None, :]
    icpt = icpt - np.einsum("tkc,tc->tk", coef, shift)
    return _LinearStack(coef, icpt, classes, type(final) is LinearDiscriminantAnalysis)


# --------------------------------------------------------------------------- scoring


@dataclass
class _Metric:
    """A scorer resolved into what the batched path needs."""

    scorer: Callable  # the scikit-learn scorer, scorer(estimator, X, y)
    name: str | None  # score function name, None for a scorer that needs the estimator
    func: Callable | None
    sign: float
    kwargs: dict
    method: str | None  # response: predict, decision_function, predict_proba


def _resolve_metric(estimator: Any, scoring: Any) -> _Metric:
    from sklearn.metrics import accuracy_score, check_scoring, r2_score

    scorer = check_scoring(estimator, scoring=scoring)
    func = getattr(scorer, "_score_func", None)
    if func is None and scoring is not None:  # a plain callable: it needs the estimators
        return _Metric(scorer, None, None, 1.0, {}, None)
    if func is None:  # estimator.score: batchable when it is the mixin's accuracy or R²
        final_score = getattr(type(_steps(estimator)[-1]), "score", None)
        if final_score is ClassifierMixin.score:
            return _Metric(scorer, "accuracy_score", accuracy_score, 1.0, {}, "predict")
        if final_score is RegressorMixin.score:
            return _Metric(scorer, "r2_score", r2_score, 1.0, {}, "predict")
        return _Metric(scorer, None, None, 1.0, {}, None)
    method = getattr(scorer, "_response_method", "predict")
    if isinstance(method, (tuple, list)):
        method = next((m for m in method if hasattr(estimator, m)), None)
    if method not in ("predict", "decision_function", "predict_proba"):
        return _Metric(scorer, None, None, 1.0, {}, None)
    return _Metric(scorer, func.__name__, func, float(scorer._sign), dict(scorer._kwargs or {}), method)


def _rank_auc(y_pos: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC along axis 0: the fraction of (positive, negative) pairs ranked right, ties counting half."""
    pos, neg = scores[y_pos], scores[~y_pos]
    if len(pos) * len(neg) > 4096:  # large test sets: the Mann-Whitney U statistic from average ranks
        from scipy.stats import rankdata

        ranks = rankdata(scores, axis=0, method="average")
        n_pos = len(pos)
        return (ranks[y_pos].sum(axis=0) - n_pos * (n_pos + 1) / 2.0) / (n_pos * len(neg))
    wins = np.zeros(scores.shape[1:])
    for p in pos:  # small test sets (the usual fold): direct pair counts beat sorting
        wins += (p > neg).sum(axis=0) + 0.5 * (p == neg).sum(axis=0)
    return wins / (len(pos) * len(neg))


def _batched_score(metric: _Metric, y: np.ndarray, resp: np.ndarray, classes: np.ndarray | None) -> np.ndarray | None:
    """Scores over the time axes of ``resp`` (epochs first) for the common metrics; None otherwise."""
    name, kw = metric.name, metric.kwargs
    if y.ndim != 1:
        return None
    if classes is not None and metric.method == "predict":  # resp holds class indices
        truth = np.searchsorted(classes, y)
        truth[classes[np.minimum(truth, len(classes) - 1)] != y] = -1  # unseen labels never match
        truth = truth.reshape((-1,) + (1,) * (resp.ndim - 1))
        if name == "accuracy_score" and not kw:
            return metric.sign * (resp == truth).mean(axis=0)
        if name == "balanced_accuracy_score" and not kw.get("adjusted", False) and set(kw) <= {"adjusted"}:
            present = np.unique(truth)
            recalls = [((resp == k) & (truth == k)).sum(axis=0) / (truth == k).sum() for k in present]
            return metric.sign * np.mean(recalls, axis=0)
        return None
    if name == "roc_auc_score" and not kw and classes is not None and len(classes) == 2:
        labels = np.unique(y)
        if len(labels) == 1:  # as scikit-learn: undefined, NaN with a warning (once, not per pair)
            from sklearn.exceptions import UndefinedMetricWarning

            message = "Only one class is present in y_true; ROC AUC is not defined (NaN)."
            warnings.warn(message, UndefinedMetricWarning, stacklevel=3)
            return np.full(resp.shape[1 : resp.ndim - (metric.method == "predict_proba")], np.nan)
        if len(labels) != 2:
            return None
        values = resp[..., 1] if metric.method == "predict_proba" else resp
        return metric.sign * _rank_auc(y == labels[1], values)
    if classes is None and metric.method == "predict" and not kw:
        y = y.astype(np.float64).reshape((-1,) + (1,) * (resp.ndim - 1))
        err = resp - y
        if name == "r2_score":
            ss_res = (err**2).sum(axis=0)
            ss_tot = ((y - y.mean()) ** 2).sum()
            if ss_tot == 0:  # scikit-learn's force_finite
                return metric.sign * np.where(ss_res == 0, 1.0, 0.0)
            return metric.sign * (1.0 - ss_res / ss_tot)
        if name == "mean_squared_error":
            return metric.sign * (err**2).mean(axis=0)
        if name == "mean_absolute_error":
            return metric.sign * np.abs(err).mean(axis=0)
    return None


def _score_responses(
    metric: _Metric, y: np.ndarray, resp: np.ndarray, classes: np.ndarray | None, n_axes: int
) -> np.ndarray:
    """Scores over the ``n_axes`` time axes of ``resp`` (first axis: epochs)."""
    out = _batched_score(metric, y, resp, classes)
    if out is not None:
        return out
    if classes is not None and metric.method == "predict":
        resp = classes[resp]
    if metric.method == "predict_proba" and classes is not None and len(classes) == 2 and y.ndim == 1:
        resp = resp[..., 1]  # binary scorers take the positive column (scikit-learn's _Scorer)
    shape = resp.shape[1 : 1 + n_axes]
    scores = np.empty(shape)
    for pos in np.ndindex(shape):
        scores[pos] = metric.sign * metric.func(y, resp[(slice(None), *pos)], **metric.kwargs)
    return scores


# --------------------------------------------------------------------------- estimators


class SlidingDecoder(MetaEstimatorMixin, BaseEstimator):
    """One estimator per time point of epochs.

    Parameters
    ----------
    estimator : scikit-learn estimator
        Classifier or regressor, cloned for every time point (a ``Pipeline``
        is fine).
    scoring : str, callable or None
        scikit-learn scoring (``"accuracy"``, ``"roc_auc"``, ``"r2"``... or a
        scorer); None uses ``estimator.score``.
    n_jobs : int or None
        Threads fitting the per-time-point clones when the estimator is not
        one of the batched models (None or -1: all cores). BLAS runs with one
        thread inside, since each problem is small.

    Attributes
    ----------
    estimators_ : list or None
        Fitted clones, one per time point; None when all time points were
        fitted at once (LDA, Ridge, RidgeClassifier, with StandardScaler).
    coef_ : numpy.ndarray, shape (n_times, n_outputs, n_channels)
        Weights of a linear model at each time point in the units of the
        input (scaling steps folded in); absent for non-linear estimators.
    intercept_ : numpy.ndarray, shape (n_times, n_outputs)
        Matching intercepts.
    classes_ : numpy.ndarray
        Class labels (classifiers).
    n_times_ : int
        Number of time points seen in :meth:`fit`.
    n_features_in_ : int
        Number of channels.

    See Also
    --------
    GeneralizingDecoder, cross_val_time_score

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    >>> from neuroenc.decoding import SlidingDecoder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 8, 30))
    >>> y = np.repeat([0, 1], 20)
    >>> X[y == 1, :, 15:] += 1.0  # the classes differ from sample 15 on
    >>> scores = SlidingDecoder(LinearDiscriminantAnalysis()).fit(X, y).score(X, y)
    >>> scores.shape, bool(scores[20:].min() > scores[:10].max())
    ((30,), True)
    """

    _generalize = False

    def __init__(self, estimator: Any, scoring: Any = None, n_jobs: int | None = 1) -> None:
        self.estimator = estimator
        self.scoring = scoring
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):  # noqa: D105
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        tags.estimator_type = get_tags(self.estimator).estimator_type
        tags.input_tags.three_d_array = True
        return tags

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any = None) -> SlidingDecoder:
        """Fit the estimator at every time point.

        Parameters
        ----------
        X : array-like (n_epochs, n_channels, n_times), BrainData or mne.Epochs
            Epochs.
        y : array-like, shape (n_epochs,) or (n_epochs, n_targets), optional
            Labels or targets; default: the BrainData conditions or the Epochs event codes.

        Returns
        -------
        SlidingDecoder
            The fitted decoder.
        """
        if not (hasattr(self.estimator, "fit") and hasattr(self.estimator, "predict")):
            raise TypeError(f"estimator must be a scikit-learn estimator with fit and predict, got {self.estimator!r}.")
        X3, y = _epochs_and_labels(X, y)
        self._metric = _resolve_metric(self.estimator, self.scoring)
        Xt = np.ascontiguousarray(X3.transpose(2, 0, 1))
        with single_threaded_blas():
            stack = None if self._metric.method is None else _batched_fit(self.estimator, Xt, y)
        self.estimators_ = None
        if stack is None:
            self.estimators_ = self._fit_each(Xt, y)
            stack = _stack_from_estimators(self.estimators_)
        self._stack = stack
        self._y_ndim = y.ndim
        for stale in ("classes_", "coef_", "intercept_"):  # from an earlier fit
            self.__dict__.pop(stale, None)
        self.n_times_, self.n_features_in_ = X3.shape[2], X3.shape[1]
        if stack is not None:
            self.coef_, self.intercept_ = stack.coef, stack.intercept
        classes = stack.classes if stack is not None else getattr(self.estimators_[0], "classes_", None)
        if classes is not None:
            self.classes_ = classes
        return self

    def _fit_each(self, Xt: np.ndarray, y: np.ndarray) -> list[Any]:
        fitted: list[Any] = [None] * len(Xt)

        def fit_range(start: int, stop: int) -> None:
            for t in range(start, stop):
                fitted[t] = clone(self.estimator).fit(Xt[t], y)

        run_chunks(fit_range, len(Xt), self.n_jobs)
        return fitted

    # ------------------------------------------------------------------ responses
    def _check_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_times_")
        X3 = check_epochs(X, "X")
        if X3.shape[1] != self.n_features_in_:
            raise ShapeError(f"X has {X3.shape[1]} channel(s); the decoder was fitted on {self.n_features_in_}.")
        if not self._generalize and X3.shape[2] != self.n_times_:
            raise ShapeError(f"X has {X3.shape[2]} time point(s); the decoder was fitted on {self.n_times_}.")
        return X3

    def _train_blocks(self, X3: np.ndarray) -> list[slice]:
        if not self._generalize:
            return [slice(0, self.n_times_)]
        n_out = self._stack.coef.shape[1] if self._stack is not None else 1
        per_train = X3.shape[0] * X3.shape[2] * n_out * 8 * 3  # decision + temporaries
        step = max(1, _BLOCK_BYTES // max(per_train, 1))
        return [slice(a, min(a + step, self.n_times_)) for a in range(0, self.n_times_, step)]

    def _responses(self, X3: np.ndarray, method: str, train: slice) -> np.ndarray:
        """``method`` of the models ``train``: (E, n_train[, n_test][, ...]).

        ``"predict"`` gives class indices for classifiers (``classes_[...]`` are the labels).
        """
        stack = self._stack
        classifier = getattr(self, "classes_", None) is not None
        if stack is not None and (method != "predict_proba" or stack.proba):
            d = stack.decision(X3, train, self._generalize)
            if method == "predict":
                if not classifier:
                    return d[..., 0] if self._y_ndim == 1 else d
                return (d[..., 0] > 0).astype(np.intp) if d.shape[-1] == 1 else d.argmax(axis=-1)
            if method == "decision_function":
                return d[..., 0] if d.shape[-1] == 1 else d
            return _expit_softmax(d)
        if self.estimators_ is None:
            raise AttributeError(f"{type(self.estimator).__name__} has no {method}.")
        return self._responses_each(X3, method, train)

    def _responses_each(self, X3: np.ndarray, method: str, train: slice) -> np.ndarray:
        classes = getattr(self, "classes_", None)
        n_epochs, n_ch, n_test = X3.shape
        stacked = X3.transpose(0, 2, 1).reshape(n_epochs * n_test, n_ch) if self._generalize else None
        parts = []
        for t in range(train.start, train.stop):
            est = self.estimators_[t]
            if not hasattr(est, method):
                raise AttributeError(f"{type(self.estimator).__name__} has no {method}.")
            if self._generalize:
                out = np.asarray(getattr(est, method)(stacked))
                out = out.reshape((n_epochs, n_test) + out.shape[1:])
            else:
                out = np.asarray(getattr(est, method)(X3[:, :, t]))
            if method == "predict" and classes is not None:
                out = np.searchsorted(classes, out)
            parts.append(out)
        return np.stack(parts, axis=1)

    def _collect(self, X: Any, method: str) -> np.ndarray:
        X3 = self._check_X(X)
        with single_threaded_blas():
            out = np.concatenate([self._responses(X3, method, b) for b in self._train_blocks(X3)], axis=1)
        if method == "predict" and getattr(self, "classes_", None) is not None:
            out = self.classes_[out]
        return out

    # ------------------------------------------------------------------ API
    def predict(self, X: Any) -> np.ndarray:
        """Predictions of each time point's model on the same time point.

        Parameters
        ----------
        X : array-like (n_epochs, n_channels, n_times), BrainData or mne.Epochs

        Returns
        -------
        numpy.ndarray, shape (n_epochs, n_times[, n_targets])
        """
        return self._collect(X, "predict")

    def decision_function(self, X: Any) -> np.ndarray:
        """Decision values at each time point.

        Parameters
        ----------
        X : array-like (n_epochs, n_channels, n_times), BrainData or mne.Epochs

        Returns
        -------
        numpy.ndarray, shape (n_epochs, n_times[, n_classes])
        """
        return self._collect(X, "decision_function")

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities at each time point.

        Parameters
        ----------
        X : array-like (n_epochs, n_channels, n_times), BrainData or mne.Epochs

        Returns
        -------
        numpy.ndarray, shape (n_epochs, n_times, n_classes)
        """
        return self._collect(X, "predict_proba")

    def score(self, X: Any, y: Any = None) -> np.ndarray:
        """Score of each time point's model (``scoring``) on the same time point.

        Parameters
        ----------
        X : array-like (n_epochs, n_channels, n_times), BrainData or mne.Epochs
        y : array-like, optional
            True labels or targets (default: from a BrainData / Epochs).

        Returns
        -------
        numpy.ndarray, shape (n_times,)
        """
        X3 = self._check_X(X)
        y = _labels(X, y, len(X3))
        metric = self._metric
        n_axes = 2 if self._generalize else 1
        classes = getattr(self, "classes_", None)
        blocks = []
        with single_threaded_blas():
            for block in self._train_blocks(X3):
                if metric.method is None:
                    blocks.append(self._score_each(metric, X3, y, block))
                else:
                    resp = self._responses(X3, metric.method, block)
                    blocks.append(_score_responses(metric, y, resp, classes, n_axes))
        return np.concatenate(blocks, axis=0)

    def _score_each(self, metric: _Metric, X3: np.ndarray, y: np.ndarray, train: slice) -> np.ndarray:
        """``scorer(estimator_t, X_t', y)`` for a scorer that needs the estimator itself."""
        tests = range(X3.shape[2]) if self._generalize else None
        rows = []
        for t in range(train.start, train.stop):
            est = self.estimators_[t]
            if tests is None:
                rows.append(metric.scorer(est, X3[:, :, t], y))
            else:
                rows.append([metric.scorer(est, X3[:, :, u], y) for u in tests])
        return np.asarray(rows, dtype=np.float64)


def _expit_softmax(d: np.ndarray) -> np.ndarray:
    """Probabilities of LDA / logistic regression from decision values (last axis: outputs)."""
    if d.shape[-1] == 1:
        from scipy.special import expit

        p = expit(d[..., 0])
        return np.stack([1.0 - p, p], axis=-1)
    z = np.exp(d - d.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class GeneralizingDecoder(SlidingDecoder):
    """Temporal generalisation: the estimator trained at time ``t`` tested at every time ``t'``.

    Parameters
    ----------
    estimator : scikit-learn estimator
        Classifier or regressor, cloned for every training time point.
    scoring : str, callable or None
        scikit-learn scoring; None uses ``estimator.score``.
    n_jobs : int or None
        Threads fitting the per-time-point clones (see :class:`SlidingDecoder`).

    Attributes
    ----------
    estimators_, coef_, intercept_, classes_, n_times_, n_features_in_
        As in :class:`SlidingDecoder`.

    Notes
    -----
    For linear models, the decision values of all (train, test) pairs are
    one product ``X (n_epochs * n_test, n_channels) @ W (n_channels, n_train)``,
    taken in blocks of training times that keep the responses under about
    128 MiB. The test epochs may have another number of time points than
    the training epochs.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    >>> from neuroenc.decoding import GeneralizingDecoder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 8, 30))
    >>> y = np.repeat([0, 1], 20)
    >>> X[y == 1, 0, 15:] += 2.0  # a sustained difference from sample 15 on
    >>> scores = GeneralizingDecoder(LinearDiscriminantAnalysis()).fit(X, y).score(X, y)
    >>> scores.shape
    (30, 30)
    """

    _generalize = True

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of every training time's model at every test time.

        Parameters
        ----------
        X : array-like (n_epochs, n_channels, n_test_times), BrainData or mne.Epochs

        Returns
        -------
        numpy.ndarray, shape (n_epochs, n_train_times, n_test_times[, n_targets])
        """
        return self._collect(X, "predict")

    def decision_function(self, X: Any) -> np.ndarray:
        """Decision values of every training time's model at every test time.

        Parameters
        ----------
        X : array-like (n_epochs, n_channels, n_test_times), BrainData or mne.Epochs

        Returns
        -------
        numpy.ndarray, shape (n_epochs, n_train_times, n_test_times[, n_classes])
        """
        return self._collect(X, "decision_function")

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of every training time's model at every test time.

        Parameters
        ----------
        X : array-like (n_epochs, n_channels, n_test_times), BrainData or mne.Epochs

        Returns
        -------
        numpy.ndarray, shape (n_epochs, n_train_times, n_test_times, n_classes)
        """
        return self._collect(X, "predict_proba")

    def score(self, X: Any, y: Any = None) -> np.ndarray:
        """Score of every training time's model at every test time.

        Parameters
        ----------
        X : array-like (n_epochs, n_channels, n_test_times), BrainData or mne.Epochs
        y : array-like, optional
            True labels or targets (default: from a BrainData / Epochs).

        Returns
        -------
        numpy.ndarray, shape (n_train_times, n_test_times)
        """
        return super().score(X, y)


def cross_val_time_score(
    decoder: SlidingDecoder,
    X: Any,
    y: Any = None,
    *,
    groups: Any = None,
    cv: Any = None,
) -> np.ndarray:
    """Cross-validated scores of a time-resolved decoder (MNE's ``cross_val_multiscore``).

    Parameters
    ----------
    decoder : SlidingDecoder or GeneralizingDecoder
        Cloned and fitted on every training split.
    X : array-like (n_epochs, n_channels, n_times), BrainData or mne.Epochs
        Epochs.
    y : array-like, optional
        Labels or targets (default: BrainData conditions / Epochs event codes).
    groups : array-like or str, optional
        Group of each epoch for group-aware splitters (``GroupKFold``,
        ``LeaveOneGroupOut``); a string names a column of a BrainData's
        ``obs`` (e.g. ``"run"``).
    cv : int, splitter or iterable, optional
        As in scikit-learn: None is 5 folds, stratified for classifiers.

    Returns
    -------
    numpy.ndarray, shape (n_splits, n_times) or (n_splits, n_times, n_times)
        One score per split and time point (or train/test time pair).
    """
    from sklearn.model_selection import check_cv

    if not isinstance(decoder, SlidingDecoder):
        raise TypeError(f"decoder must be a SlidingDecoder or GeneralizingDecoder, got {decoder!r}.")
    X3, y = _epochs_and_labels(X, y)
    groups = _groups(X, groups, len(X3))
    splitter = check_cv(cv, y, classifier=is_classifier(decoder.estimator))
    scores = []
    for train, test in splitter.split(X3, y, groups):
        fitted = clone(decoder).fit(X3[train], y[train])
        scores.append(fitted.score(X3[test], y[test]))
    return np.stack(scores)
