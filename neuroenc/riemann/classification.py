"""Classifiers of SPD matrices: MDM, FGDA, FgMDM and tangent-space classification.

scikit-learn estimators with pyRiemann 0.12's definitions (same class means,
distances, ``predict_proba`` as the softmax of minus the squared distances,
same FGDA filters), computed with the compiled kernels of neuroenc. Inputs
are arrays ``(n_matrices, n, n)``: the output of
:func:`neuroenc.riemann.covariances`, of pyRiemann's ``Covariances``, or any
SPD matrices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

# Public calls run whole with one BLAS thread: after a threaded call, OpenBLAS
# leaves its workers spinning, and they would steal the cores the kernel
# threads run on (small matrices gain nothing from BLAS threads anyway).
from neuroenc._kernels.parallel import single_threaded_blas
from neuroenc.errors import LabelError, ShapeError
from neuroenc.riemann.distances import _check_metric as _check_distance_metric
from neuroenc.riemann.distances import _finish, _pair_values
from neuroenc.riemann.means import _mean_validated, check_mean_metric, check_weights
from neuroenc.riemann.tangent import TangentSpace, _untangent_validated, split_metric
from neuroenc.validation import check_array, check_length, check_spd

__all__ = ["MDM", "FGDA", "FgMDM", "TSClassifier"]


def _check_Xy(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    X = check_spd(X, "X", ndim=3)
    if y is None:
        raise LabelError("y is required: this estimator is supervised.")
    y = np.asarray(y)
    if y.ndim != 1:
        raise LabelError(f"y must be 1-D (one label per matrix), got shape {y.shape}.")
    check_length(len(X), y, "y", of="matrices")
    return X, y


def _check_sample_weight(sample_weight: Any, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n)
    w = check_array(sample_weight, "sample_weight", ndim=1, dtype=np.float64)
    check_length(n, w, "sample_weight", of="matrices")
    return w


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class MDM(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Minimum distance to mean classifier.

    Each class is represented by the mean of its matrices; a matrix gets the
    class of the nearest mean.

    Parameters
    ----------
    metric : str or dict
        Metric of the means and the distances, or a dict
        ``{"mean": ..., "distance": ...}`` (pyRiemann's convention). See
        :data:`neuroenc.riemann.MEAN_METRICS` and
        :data:`neuroenc.riemann.DISTANCE_METRICS`.
    n_jobs : int or None
        Threads (None or -1: all cores).

    Attributes
    ----------
    classes_ : numpy.ndarray, shape (n_classes,)
        Class labels.
    covmeans_ : numpy.ndarray, shape (n_classes, n, n)
        Class means.
    n_features_in_ : int
        Number of channels of the training matrices.
    """

    def __init__(self, metric: str | dict = "riemann", n_jobs: int | None = None) -> None:
        self.metric = metric
        self.n_jobs = n_jobs

    def _metrics(self) -> tuple[str, str]:
        mean_metric, dist_metric = split_metric(self.metric, ("mean", "distance"))
        return check_mean_metric(mean_metric), _check_distance_metric(dist_metric)

    def _fit_validated(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> MDM:
        mean_metric, _ = self._metrics()
        self.classes_ = np.unique(y)
        means = []
        for c in self.classes_:
            mask = y == c
            w = check_weights(sample_weight[mask], int(mask.sum()))
            means.append(_mean_validated(X[mask], mean_metric, w, n_jobs=self.n_jobs))
        self.covmeans_ = np.stack(means)
        self.n_features_in_ = X.shape[-1]
        return self

    @single_threaded_blas()
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MDM:
        """Compute the class means.

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.
        y : array-like, shape (n_matrices,)
            Labels.
        sample_weight : array-like, shape (n_matrices,), optional
            Weights of the matrices in their class mean.

        Returns
        -------
        MDM
            The fitted classifier.
        """
        self._metrics()
        X, y = _check_Xy(X, y)
        return self._fit_validated(X, y, _check_sample_weight(sample_weight, len(X)))

    def _check_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "covmeans_")
        X = check_spd(X, "X", ndim=3)
        n = self.covmeans_.shape[-1]
        if X.shape[-1] != n:
            raise ShapeError(f"X holds {X.shape[-1]} x {X.shape[-1]} matrices; the model was fitted on {n} x {n}.")
        return X

    def _distances(self, X: np.ndarray, squared: bool = False) -> np.ndarray:
        _, dist_metric = self._metrics()
        n_x, n_c = len(X), len(self.covmeans_)
        ia = np.repeat(np.arange(n_x), n_c)
        ib = np.tile(np.arange(n_c), n_x)
        values = _pair_values(X, self.covmeans_, ia, ib, dist_metric, self.n_jobs)
        return _finish(values, dist_metric, squared).reshape(n_x, n_c)

    @single_threaded_blas()
    def transform(self, X: Any) -> np.ndarray:
        """Distances of each matrix to each class mean.

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.

        Returns
        -------
        numpy.ndarray, shape (n_matrices, n_classes)
            Distances.
        """
        return self._distances(self._check_X(X))

    @single_threaded_blas()
    def predict(self, X: Any) -> np.ndarray:
        """Class of the nearest mean.

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.

        Returns
        -------
        numpy.ndarray, shape (n_matrices,)
            Predicted labels.
        """
        d = self._distances(self._check_X(X))
        return self.classes_[d.argmin(axis=1)]

    @single_threaded_blas()
    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of minus the squared distances to the class means (pyRiemann's definition).

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.

        Returns
        -------
        numpy.ndarray, shape (n_matrices, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        d = self._distances(self._check_X(X))
        return _softmax(-(d**2))


class FGDA(TransformerMixin, BaseEstimator):
    """Fisher geodesic discriminant analysis: filter SPD matrices in the tangent space.

    Tangent vectors at the mean are projected on the discriminant subspace
    of a shrinkage LDA (``solver="lsqr"``, ``shrinkage="auto"``) and mapped
    back to the manifold, as pyRiemann's ``FGDA``.

    Parameters
    ----------
    metric : str or dict
        Metric of the mean and of the maps (``{"mean": ..., "map": ...}``).
    tsupdate : bool
        Recompute the reference point on the data given to ``transform``.
    n_jobs : int or None
        Threads (None or -1: all cores).

    Attributes
    ----------
    classes_ : numpy.ndarray, shape (n_classes,)
        Class labels.
    ts_ : TangentSpace
        The fitted tangent-space transformer.
    lda_ : LinearDiscriminantAnalysis
        The fitted LDA.
    filters_ : numpy.ndarray, shape (n_ts, n_ts)
        Projection on the discriminant subspace, applied to tangent vectors.
    n_features_in_ : int
        Number of channels of the training matrices.
    """

    def __init__(self, metric: str | dict = "riemann", tsupdate: bool = False, n_jobs: int | None = None) -> None:
        self.metric = metric
        self.tsupdate = tsupdate
        self.n_jobs = n_jobs

    def _fit_ts(self, X: np.ndarray, y: np.ndarray, sample_weight: Any) -> np.ndarray:
        self.classes_ = np.unique(y)
        self.ts_ = TangentSpace(metric=self.metric, tsupdate=self.tsupdate, n_jobs=self.n_jobs)
        ts = self.ts_.fit_transform(X, sample_weight=sample_weight)
        self.lda_ = LinearDiscriminantAnalysis(
            n_components=len(self.classes_) - 1, solver="lsqr", shrinkage="auto"
        ).fit(ts, y)
        W = self.lda_.coef_
        self.filters_ = W.T @ np.linalg.pinv(W @ W.T) @ W
        self.n_features_in_ = X.shape[-1]
        return ts

    def _back(self, ts: np.ndarray) -> np.ndarray:
        _, map_metric = self.ts_._metrics()
        return _untangent_validated(ts @ self.filters_, self.ts_.reference_, map_metric, self.n_jobs)

    @single_threaded_blas()
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FGDA:
        """Fit the reference point and the discriminant filters.

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.
        y : array-like, shape (n_matrices,)
            Labels (at least two classes).
        sample_weight : array-like, shape (n_matrices,), optional
            Weights of the reference mean.

        Returns
        -------
        FGDA
            The fitted transformer.
        """
        X, y = self._validate_fit(X, y)
        self._fit_ts(X, y, sample_weight)
        return self

    def _validate_fit(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        TangentSpace(metric=self.metric)._metrics()
        X, y = _check_Xy(X, y)
        if len(np.unique(y)) < 2:
            raise LabelError("FGDA needs at least two classes in y.")
        return X, y

    @single_threaded_blas()
    def transform(self, X: Any) -> np.ndarray:
        """Filter the matrices.

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.

        Returns
        -------
        numpy.ndarray, shape (n_matrices, n, n)
            Filtered SPD matrices.
        """
        check_is_fitted(self, "filters_")
        return self._back(self.ts_.transform(X))

    @single_threaded_blas()
    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> np.ndarray:
        """Fit, then filter the training matrices.

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.
        y : array-like, shape (n_matrices,)
            Labels.
        sample_weight : array-like, shape (n_matrices,), optional
            Weights of the reference mean.

        Returns
        -------
        numpy.ndarray, shape (n_matrices, n, n)
            Filtered SPD matrices.
        """
        X, y = self._validate_fit(X, y)
        return self._back(self._fit_ts(X, y, sample_weight))


class FgMDM(ClassifierMixin, TransformerMixin, BaseEstimator):
    """MDM on FGDA-filtered matrices (pyRiemann's ``FgMDM``).

    Parameters
    ----------
    metric : str or dict
        Metric of FGDA and MDM; a dict needs the keys ``"mean"``,
        ``"distance"`` and ``"map"``.
    tsupdate : bool
        Recompute the FGDA reference point on the data given to ``predict``.
    n_jobs : int or None
        Threads (None or -1: all cores).

    Attributes
    ----------
    classes_ : numpy.ndarray, shape (n_classes,)
        Class labels.
    fgda_ : FGDA
        The fitted filter.
    mdm_ : MDM
        The fitted classifier of the filtered matrices.
    n_features_in_ : int
        Number of channels of the training matrices.
    """

    def __init__(self, metric: str | dict = "riemann", tsupdate: bool = False, n_jobs: int | None = None) -> None:
        self.metric = metric
        self.tsupdate = tsupdate
        self.n_jobs = n_jobs

    @single_threaded_blas()
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FgMDM:
        """Fit FGDA, then MDM on the filtered matrices.

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.
        y : array-like, shape (n_matrices,)
            Labels.
        sample_weight : array-like, shape (n_matrices,), optional
            Weights of the means.

        Returns
        -------
        FgMDM
            The fitted classifier.
        """
        self.mdm_ = MDM(metric=self.metric, n_jobs=self.n_jobs)
        self.mdm_._metrics()
        self.fgda_ = FGDA(metric=self.metric, tsupdate=self.tsupdate, n_jobs=self.n_jobs)
        X, y = self.fgda_._validate_fit(X, y)
        cov = self.fgda_._back(self.fgda_._fit_ts(X, y, sample_weight))
        self.mdm_._fit_validated(cov, y, _check_sample_weight(sample_weight, len(X)))
        self.classes_ = self.mdm_.classes_
        self.n_features_in_ = X.shape[-1]
        return self

    def _filtered(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "mdm_")
        return self.fgda_.transform(X)

    @single_threaded_blas()
    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (see :meth:`MDM.predict`).

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.

        Returns
        -------
        numpy.ndarray, shape (n_matrices,)
            Labels.
        """
        filtered = self._filtered(X)
        return self.mdm_.predict(filtered)

    @single_threaded_blas()
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (see :meth:`MDM.predict_proba`).

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.

        Returns
        -------
        numpy.ndarray, shape (n_matrices, n_classes)
            Probabilities.
        """
        filtered = self._filtered(X)
        return self.mdm_.predict_proba(filtered)

    @single_threaded_blas()
    def transform(self, X: Any) -> np.ndarray:
        """Distances of the filtered matrices to the class means.

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.

        Returns
        -------
        numpy.ndarray, shape (n_matrices, n_classes)
            Distances.
        """
        filtered = self._filtered(X)
        return self.mdm_.transform(filtered)


class TSClassifier(ClassifierMixin, BaseEstimator):
    """Classification in the tangent space: :class:`TangentSpace` followed by a vector classifier.

    Parameters
    ----------
    metric : str or dict
        Metric of the reference mean and of the map (``{"mean": ..., "map": ...}``).
    tsupdate : bool
        Recompute the reference point on the data given to ``predict``.
    clf : classifier, optional
        Scikit-learn classifier of the tangent vectors; it is cloned before
        fitting. None means ``LogisticRegression()``, pyRiemann's default.
    n_jobs : int or None
        Threads of the geometry kernels (None or -1: all cores).

    Attributes
    ----------
    classes_ : numpy.ndarray, shape (n_classes,)
        Class labels.
    ts_ : TangentSpace
        The fitted tangent-space transformer.
    clf_ : classifier
        The fitted classifier.
    n_features_in_ : int
        Number of channels of the training matrices.
    """

    def __init__(
        self, metric: str | dict = "riemann", tsupdate: bool = False, clf: Any = None, n_jobs: int | None = None
    ) -> None:
        self.metric = metric
        self.tsupdate = tsupdate
        self.clf = clf
        self.n_jobs = n_jobs

    @single_threaded_blas()
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> TSClassifier:
        """Fit the tangent space and the classifier.

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.
        y : array-like, shape (n_matrices,)
            Labels.
        sample_weight : array-like, shape (n_matrices,), optional
            Weights of the reference mean, also given to the classifier when
            its ``fit`` accepts them.

        Returns
        -------
        TSClassifier
            The fitted classifier.
        """
        import inspect

        clf = LogisticRegression() if self.clf is None else self.clf
        if not isinstance(clf, ClassifierMixin):
            raise TypeError(f"clf must be a scikit-learn classifier, got {clf!r}.")
        TangentSpace(metric=self.metric)._metrics()
        X, y = _check_Xy(X, y)
        self.classes_ = np.unique(y)
        self.ts_ = TangentSpace(metric=self.metric, tsupdate=self.tsupdate, n_jobs=self.n_jobs)
        ts = self.ts_.fit_transform(X, sample_weight=sample_weight)
        self.clf_ = clone(clf)
        fit_kwargs = {}
        if sample_weight is not None and "sample_weight" in inspect.signature(self.clf_.fit).parameters:
            fit_kwargs["sample_weight"] = _check_sample_weight(sample_weight, len(X))
        self.clf_.fit(ts, y, **fit_kwargs)
        self.n_features_in_ = X.shape[-1]
        return self

    def _ts(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "clf_")
        return self.ts_.transform(X)

    @single_threaded_blas()
    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels.

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.

        Returns
        -------
        numpy.ndarray, shape (n_matrices,)
            Labels.
        """
        ts = self._ts(X)
        return self.clf_.predict(ts)

    @single_threaded_blas()
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the classifier.

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.

        Returns
        -------
        numpy.ndarray, shape (n_matrices, n_classes)
            Probabilities.
        """
        ts = self._ts(X)
        return self.clf_.predict_proba(ts)
