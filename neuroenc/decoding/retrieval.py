"""Retrieval-style decoding: predict a stimulus embedding, then find it among candidates.

A regression (ridge by default) maps brain responses to the embedding of the
stimulus in some model (a vision or language network layer). A prediction
is correct at top-k when the true stimulus is among the k candidates most
similar to it, as in MEG/fMRI image decoding (e.g. Benchetrit et al. 2023,
"Brain decoding: toward real-time reconstruction of visual perception").

Ties between candidates are broken at random in expectation: a true
candidate tied with ``e`` others after ``g`` strictly better ones has rank
``g + 1 + e / 2`` and counts as top-k with probability
``clip((k - g) / (e + 1), 0, 1)``. A constant prediction therefore scores at
chance, not perfectly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from neuroenc.errors import LabelError, ShapeError
from neuroenc.validation import check_array, check_choice, check_length

__all__ = ["RetrievalDecoder", "retrieval_scores", "similarity"]

METRICS = ("cosine", "correlation")
#: similarities closer than this count as tied (identical candidates can differ in the last bits of a GEMM)
_TIE_TOL = 1e-12


def _check_k(k: Any) -> tuple[int, ...]:
    ks = (k,) if np.ndim(k) == 0 else tuple(k)
    if not ks:
        raise ShapeError("k is empty; give at least one rank cutoff, e.g. k=(1, 5).")
    for v in ks:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ShapeError(f"k must hold positive integers, got {v!r}.")
    return tuple(int(v) for v in ks)


def _unit_rows(A: np.ndarray, center: bool) -> np.ndarray:
    """Rows scaled to unit norm (after centring for correlation); all-zero rows stay zero."""
    if center:
        A = A - A.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    return A / np.where(norms > 0, norms, 1.0)


def similarity(pred: Any, candidates: Any, metric: str = "cosine") -> np.ndarray:
    """Similarity of every prediction to every candidate.

    Parameters
    ----------
    pred : array-like, shape (n_predictions, n_dims)
        Predicted embeddings.
    candidates : array-like, shape (n_candidates, n_dims)
        Candidate embeddings.
    metric : {"cosine", "correlation"}
        Cosine similarity, or Pearson correlation across the embedding
        dimensions. A constant (or zero) row has similarity 0 to everything.

    Returns
    -------
    numpy.ndarray, shape (n_predictions, n_candidates)
    """
    check_choice(metric, METRICS, "metric")
    P = check_array(pred, "pred", ndim=2, dtype=np.float64)
    C = check_array(candidates, "candidates", ndim=2, dtype=np.float64)
    if P.shape[1] != C.shape[1]:
        raise ShapeError(f"pred has {P.shape[1]} dimension(s) but candidates have {C.shape[1]}.")
    center = metric == "correlation"
    return _unit_rows(P, center) @ _unit_rows(C, center).T


def retrieval_scores(
    pred: Any,
    candidates: Any,
    *,
    target_index: Any = None,
    k: int | Sequence[int] = (1, 5),
    metric: str = "cosine",
) -> dict[str, Any]:
    """Top-k accuracy and rank of the true candidate for each prediction.

    Parameters
    ----------
    pred : array-like, shape (n_predictions, n_dims)
        Predicted embeddings (e.g. ``RetrievalDecoder.predict``).
    candidates : array-like, shape (n_candidates, n_dims)
        Embeddings to retrieve from.
    target_index : array-like of int, shape (n_predictions,), optional
        Row of ``candidates`` that is the truth for each prediction. Default:
        prediction ``i`` belongs to candidate ``i`` (any further candidates
        are distractors).
    k : int or sequence of int
        Rank cutoffs of the top-k accuracies.
    metric : {"cosine", "correlation"}
        Similarity (see :func:`similarity`).

    Returns
    -------
    dict
        ``"top<k>"`` for each k: fraction of predictions whose truth is among
        the k most similar candidates; ``"mean_rank"`` and ``"median_rank"``
        (1 is best); ``"rank_accuracy"``: mean of
        ``1 - (rank - 1) / (n_candidates - 1)`` (1 is perfect, 0.5 chance);
        ``"ranks"``: the rank of each prediction; ``"n_candidates"``.
        Ties are broken at random in expectation (see the module notes).

    Examples
    --------
    >>> import numpy as np
    >>> from neuroenc.decoding import retrieval_scores
    >>> candidates = np.eye(4)
    >>> pred = [[1, 0.2, 0, 0], [0.2, 1, 0, 0], [0, 0, 0.5, 1], [0, 0, 1, 0.5]]  # last two swapped
    >>> s = retrieval_scores(pred, candidates, k=(1, 2))
    >>> s["top1"], s["top2"], s["mean_rank"]
    (0.5, 1.0, 1.5)
    """
    ks = _check_k(k)
    sims = similarity(pred, candidates, metric)
    n_pred, n_cand = sims.shape
    if target_index is None:
        if n_cand < n_pred:
            raise LabelError(
                f"{n_pred} predictions but only {n_cand} candidates; give target_index when "
                "several predictions share a candidate."
            )
        target = np.arange(n_pred)
    else:
        target = np.asarray(target_index)
        if target.ndim != 1 or target.dtype.kind not in "iu":
            raise LabelError(f"target_index must be a 1-D array of integers, got {target.dtype} shape {target.shape}.")
        check_length(n_pred, target, "target_index", of="predictions")
        if target.size and (target.min() < 0 or target.max() >= n_cand):
            raise LabelError(
                f"target_index must lie in [0, {n_cand}); got values from {target.min()} to {target.max()}."
            )
    true = sims[np.arange(n_pred), target][:, None]
    better = (sims > true + _TIE_TOL).sum(axis=1)
    tied = (np.abs(sims - true) <= _TIE_TOL).sum(axis=1) - 1
    ranks = better + 1 + tied / 2.0
    out: dict[str, Any] = {f"top{kk}": float(np.clip((kk - better) / (tied + 1), 0, 1).mean()) for kk in ks}
    out["mean_rank"] = float(ranks.mean())
    out["median_rank"] = float(np.median(ranks))
    out["rank_accuracy"] = float(np.mean(1 - (ranks - 1) / (n_cand - 1))) if n_cand > 1 else 1.0
    out["ranks"] = ranks
    out["n_candidates"] = n_cand
    return out


def _default_estimator() -> Any:
    from neuroenc.encoding.ridge import RidgeCV

    return RidgeCV(alphas=np.logspace(-2, 6, 9))


def _brain(X: Any) -> np.ndarray:
    """(n_samples, n_features) brain data; BrainData, and 3-D arrays, flattened per sample."""
    data = X.data if hasattr(X, "modality") and hasattr(X, "obs") else X
    if hasattr(data, "get_data") and hasattr(data, "info"):
        data = data.get_data()
    arr = check_array(data, "X", ndim=(2, 3), dtype=np.float64)
    return arr.reshape(len(arr), -1)


class RetrievalDecoder(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Regression from brain responses to stimulus embeddings, scored by retrieval.

    Parameters
    ----------
    estimator : scikit-learn regressor, optional
        Multi-output regressor; default
        :class:`neuroenc.encoding.RidgeCV` with ``alphas=logspace(-2, 6, 9)``
        (one alpha per embedding dimension, efficient leave-one-out).
    metric : {"cosine", "correlation"}
        Similarity used for retrieval.
    k : int or sequence of int
        Rank cutoffs; :meth:`score` returns the accuracy at the first one.

    Attributes
    ----------
    estimator_ : object
        The fitted regressor.
    n_features_in_ : int
        Number of brain features (channels x times for epochs).

    Notes
    -----
    ``X`` is ``(n_samples, n_features)``, epochs ``(n_samples, n_channels,
    n_times)`` (flattened, e.g. a short window of MEG), a
    :class:`neuroenc.BrainData` or an :class:`mne.Epochs`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from neuroenc.decoding import RetrievalDecoder
    >>> rng = np.random.default_rng(0)
    >>> emb = rng.standard_normal((60, 16))
    >>> brain = emb @ rng.standard_normal((16, 50)) + 0.5 * rng.standard_normal((60, 50))
    >>> dec = RetrievalDecoder(Ridge(alpha=1.0)).fit(brain[:40], emb[:40])
    >>> float(dec.score(brain[40:], emb[40:]))  # top-1 among the 20 test embeddings
    1.0
    """

    def __init__(self, estimator: Any = None, metric: str = "cosine", k: int | Sequence[int] = (1, 5)) -> None:
        self.estimator = estimator
        self.metric = metric
        self.k = k

    def fit(self, X: Any, Y: Any) -> RetrievalDecoder:
        """Fit the regression from brain responses to embeddings.

        Parameters
        ----------
        X : array-like, BrainData or mne.Epochs
            Brain responses (see Notes).
        Y : array-like, shape (n_samples, n_dims)
            Embedding of each sample's stimulus.

        Returns
        -------
        RetrievalDecoder
            The fitted decoder.
        """
        check_choice(self.metric, METRICS, "metric")
        _check_k(self.k)
        Xb = _brain(X)
        Y = check_array(Y, "Y", ndim=2, dtype=np.float64)
        check_length(len(Xb), Y, "Y", of="samples in X")
        est = _default_estimator() if self.estimator is None else self.estimator
        self.estimator_ = clone(est).fit(Xb, Y)
        self.n_features_in_ = Xb.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted embeddings.

        Parameters
        ----------
        X : array-like, BrainData or mne.Epochs

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_dims)
        """
        check_is_fitted(self, "estimator_")
        Xb = _brain(X)
        if Xb.shape[1] != self.n_features_in_:
            raise ShapeError(f"X has {Xb.shape[1]} feature(s); the decoder was fitted on {self.n_features_in_}.")
        return np.asarray(self.estimator_.predict(Xb), dtype=np.float64).reshape(len(Xb), -1)

    def evaluate(self, X: Any, Y: Any, *, candidates: Any = None, target_index: Any = None) -> dict[str, Any]:
        """:func:`retrieval_scores` of the predictions for ``X``.

        Parameters
        ----------
        X : array-like, BrainData or mne.Epochs
            Brain responses.
        Y : array-like, shape (n_samples, n_dims)
            True embeddings; they are the candidates unless ``candidates`` is given.
        candidates : array-like, shape (n_candidates, n_dims), optional
            Candidate set; then ``target_index`` (default ``0..n_samples-1``)
            says which candidate is each sample's truth and ``Y`` is unused.
        target_index : array-like of int, optional
            See :func:`retrieval_scores`.

        Returns
        -------
        dict
            As :func:`retrieval_scores`.
        """
        pred = self.predict(X)
        if candidates is None:
            candidates = check_array(Y, "Y", ndim=2, dtype=np.float64)
            check_length(len(pred), candidates, "Y", of="samples in X")
        return retrieval_scores(pred, candidates, target_index=target_index, k=self.k, metric=self.metric)

    def score(self, X: Any, Y: Any) -> float:
        """Top-k accuracy (first ``k``) of retrieving each sample's embedding among those of ``Y``.

        Parameters
        ----------
        X : array-like, BrainData or mne.Epochs
        Y : array-like, shape (n_samples, n_dims)

        Returns
        -------
        float
        """
        first = _check_k(self.k)[0]
        return self.evaluate(X, Y)[f"top{first}"]
