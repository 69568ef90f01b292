"""Shape metrics: distances between representations up to rotations, permutations or noise.

Generalized shape metrics (Williams et al. 2021, *Generalized shape metrics
on neural representations*) map each representation to a point and measure
the distance between the orbits of those points under a group of alignments.
They are **distances** (0 for identical representations) that satisfy the
triangle inequality, so that many-by-many matrices of them can be embedded,
clustered or averaged.

:func:`shape_distance`
    The Procrustes / CCA family with netrep's ``LinearMetric`` conventions:
    columns are centred, each representation ``X`` (``n`` stimuli by ``p``
    units) is partially whitened, ``X_a = X Z_a`` with
    ``Z_a = V diag(alpha + (1 - alpha) lam**-1/2) V^T`` for the eigenvalues
    ``lam`` (clipped below at ``1e-7``) and eigenvectors ``V`` of ``X^T X``,
    rescaled to keep the total variance ``trace(X^T X)``. ``alpha = 1`` is
    Procrustes (no whitening), ``alpha = 0`` is CCA (full whitening). The
    optimal rotation gives ``<X_a Q, Y_a> = ||X_a^T Y_a||_*`` (nuclear norm),
    so

    * ``score="angular"``: ``arccos(||X_a^T Y_a||_* / (||X_a||_F ||Y_a||_F))``,
      in ``[0, pi/2]``;
    * ``score="euclidean"``: ``min_Q ||X_a Q - Y_a||_F``, the square root of the
      Procrustes residual ``||X_a||^2 + ||Y_a||^2 - 2 ||X_a^T Y_a||_*``.

    Representations with different numbers of units are zero-padded to the
    larger width, as netrep does. The padding enters only the
    variance-preserving rescaling, so it affects only ``euclidean`` with
    ``0 < alpha < 1``; that score satisfies the triangle inequality among
    representations of equal width (``angular``, and ``euclidean`` with
    ``alpha = 1``, do for any widths).

:func:`permutation_distance`
    Centred representations aligned by the best permutation of units
    (linear assignment on ``X^T Y``), scored like :func:`shape_distance`;
    the angular distance lies in ``[0, pi]``.

:func:`stochastic_shape_distance`
    The Gaussian stochastic shape metric of Duong et al. 2023 (*Representational
    dissimilarity metric spaces for stochastic neural networks*, ICLR) for
    trial-resolved (noisy) responses: each stimulus is a Gaussian with mean
    ``m_i`` and covariance ``S_i``, and

    ``d**2 = min_T mean_i [alpha ||m^x_i - T m^y_i||**2 + (2 - alpha) B**2(S^x_i, T S^y_i T^T)]``

    over orthogonal (or permutation) ``T``, with ``B`` the Bures distance
    (``B**2(A, C) = tr A + tr C - 2 tr (A**1/2 C A**1/2)**1/2``). ``alpha = 2``
    compares means only (Procrustes distance of the means divided by
    ``sqrt(n) / sqrt(2)``), ``alpha = 1`` is the 2-Wasserstein distance,
    ``alpha = 0`` compares covariances only. ``T`` is found by the alternating
    scheme of netrep's ``GaussianStochasticMetric``: each step maximises a
    tight lower bound of the objective, so it never decreases. The objective
    has local optima; the climb starts from the alignment of the means
    (netrep's start), the identity, the alignment of matched trials (exact
    when trial ``k`` of both representations is the same event, e.g. two
    simultaneously recorded regions) and ``n_init`` random alignments, and
    the best optimum is kept. Without matched trials, covariance-dominated
    comparisons (``alpha < 1``, many units) may need random starts.

Complexity (``n`` stimuli, ``p`` units, ``k = min(n, p)``)
    :func:`shape_distance`: ``O(n p k + k**3)`` per representation (one
    symmetric eigendecomposition of the smaller of ``X X^T`` and ``X^T X``),
    then ``O(n k_x k_y + k**3)`` per pair; :func:`~neuroenc.similarity.all_pairs.pairwise`
    reuses the per-representation part. :func:`permutation_distance`:
    ``O(n p q + max(p, q)**3)``. :func:`stochastic_shape_distance`:
    ``O(n (r p**2 + r**3))`` per iteration with ``r`` the trials (or ``p``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from neuroenc.errors import DataError, ShapeError
from neuroenc.similarity.kernel_alignment import _centred, _check_same_stimuli, _paired, _representation
from neuroenc.validation import check_array, check_choice, check_positive

__all__ = ["SCORES", "GROUPS", "shape_distance", "permutation_distance", "stochastic_shape_distance"]

#: scores of :func:`shape_distance` and :func:`permutation_distance`
SCORES = ("angular", "euclidean")
#: alignment groups of :func:`stochastic_shape_distance`
GROUPS = ("orthogonal", "permutation", "identity")

#: netrep's floor on the eigenvalues of ``X^T X`` before whitening
_EIGVAL_TOL = 1e-7


def _check_alpha(alpha: Any, high: float) -> float:
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise DataError(f"alpha must be a number in [0, {high:g}], got {alpha!r}.") from None
    if not 0.0 <= value <= high:
        raise DataError(f"alpha must be in [0, {high:g}], got {alpha!r}.")
    return value


def _score(inner: float, sq_x: float, sq_y: float, score: str) -> float:
    """Angular or Euclidean distance from ``<X, Y>`` and the squared norms, after alignment."""
    if score == "euclidean":
        return float(np.sqrt(max(sq_x + sq_y - 2.0 * inner, 0.0)))
    if sq_x == 0.0 and sq_y == 0.0:
        return 0.0
    if sq_x == 0.0 or sq_y == 0.0:
        # A constant representation is orthogonal to every other one; this
        # keeps the angular distance a metric.
        return float(np.pi / 2)
    return float(np.arccos(np.clip(inner / np.sqrt(sq_x * sq_y), -1.0, 1.0)))


# ----------------------------------------------------------------------
# Procrustes / CCA family
class _Whitened(NamedTuple):
    """Per-representation part of :func:`shape_distance`."""

    #: (n, r) ``U diag(s d)`` over the numerically non-null directions: the
    #: whitened representation up to a right rotation and the variance-preserving scale
    factor: np.ndarray
    #: (min(n, p),) eigenvalues of ``X^T X`` (the non-zero ones and those of ``X X^T``), clipped
    lam: np.ndarray
    #: units of the representation
    n_units: int
    alpha: float


def _whiten(X: np.ndarray, alpha: float) -> _Whitened:
    Xc = _centred(X)
    n, p = Xc.shape
    if n <= p:
        lam, U = np.linalg.eigh(Xc @ Xc.T)
        base = U * np.sqrt(np.maximum(lam, 0.0))
    else:
        lam, V = np.linalg.eigh(Xc.T @ Xc)
        base = Xc @ V
    # Numerically null directions (the centring direction of X X^T, rank
    # deficiency) carry only rounding noise, which whitening would amplify
    # by up to 1 / sqrt(_EIGVAL_TOL); X has no component there.
    keep = lam > max(n, p) * np.finfo(float).eps * max(lam[-1], 0.0)
    lam = np.maximum(lam, _EIGVAL_TOL)
    if alpha > 1.0 - _EIGVAL_TOL:  # netrep skips whitening there
        d = np.ones_like(lam)
    else:
        d = alpha + (1.0 - alpha) / np.sqrt(lam)
    return _Whitened(base[:, keep] * d[keep], lam, p, alpha)


def _variance_scale(w: _Whitened, width: int) -> float:
    """netrep's rescaling of the whitening so that ``trace(X^T X)`` is kept, for ``width`` padded units."""
    a = w.alpha
    if a > 1.0 - _EIGVAL_TOL:
        return 1.0
    # Eigenvalues not computed (p > n) and padded units are zero, clipped.
    n_zero = width - w.lam.size
    lam_sum = w.lam.sum() + n_zero * _EIGVAL_TOL
    new_var = np.sum(a * a * w.lam + 2 * a * (1 - a) * np.sqrt(w.lam) + (1 - a) ** 2)
    new_var += n_zero * (a * a * _EIGVAL_TOL + 2 * a * (1 - a) * np.sqrt(_EIGVAL_TOL) + (1 - a) ** 2)
    return float(np.sqrt(lam_sum / new_var))


def _shape_pair(wx: _Whitened, wy: _Whitened, score: str) -> float:
    width = max(wx.n_units, wy.n_units)
    sx, sy = _variance_scale(wx, width), _variance_scale(wy, width)
    nuclear = np.linalg.svd(wx.factor.T @ wy.factor, compute_uv=False).sum() * sx * sy
    sq_x = np.einsum("ij,ij->", wx.factor, wx.factor) * sx * sx
    sq_y = np.einsum("ij,ij->", wy.factor, wy.factor) * sy * sy
    return _score(nuclear, sq_x, sq_y, score)


def _shape_params(alpha: Any, score: str) -> float:
    check_choice(score, SCORES, "shape score")
    return _check_alpha(alpha, 1.0)


def shape_distance(X: Any, Y: Any, alpha: float = 1.0, score: str = "angular") -> float:
    """Generalized shape metric between two representations (Procrustes to CCA).

    Parameters
    ----------
    X : array-like, shape (n_stimuli, n_units_x) or (n_stimuli, ...)
        First representation (array, BrainData with one row per stimulus,
        torch tensor); axes after the first are flattened.
    Y : array-like, shape (n_stimuli, n_units_y) or (n_stimuli, ...)
        Second representation, rows in the same stimulus order.
    alpha : float in [0, 1]
        Whitening: 1 is Procrustes (rotations only), 0 is CCA (any invertible
        linear map); in between interpolates (netrep's ``LinearMetric``).
    score : {"angular", "euclidean"}
        Angular distance in [0, pi/2] (scale-invariant) or Euclidean
        Procrustes distance (in the units of the data).

    Returns
    -------
    float
        Distance: 0 for identical representations and up to rotations and
        translations (``alpha = 0``: up to any invertible linear map). The
        angular score also forgives isotropic scaling for ``alpha`` 0 or 1
        (partial whitening acts on absolute eigenvalues, as in netrep). With
        ``angular``, a constant representation is at pi/2 from every other
        one. Values below about ``1e-8`` (angular) or ``1e-8 * ||X||``
        (euclidean) are rounding level (the score is an ``arccos`` /
        square root of a difference).

    Raises
    ------
    ShapeError
        Different numbers of stimuli (the message gives both shapes).
    NonFiniteError
        NaN or Inf in the input.
    DataError, UnknownNameError
        ``alpha`` outside [0, 1] or unknown ``score``.

    Notes
    -----
    Equals netrep's ``LinearMetric(alpha, center_columns=True,
    zero_pad=True, score_method=score).fit_score(X, Y)``; see the module
    documentation for the definition and complexity.
    """
    alpha = _shape_params(alpha, score)
    X, Y = _paired(X, Y)
    return _shape_pair(_whiten(X, alpha), _whiten(Y, alpha), score)


def _prepare_shape(X: np.ndarray, alpha: float = 1.0, score: str = "angular") -> _Whitened:
    return _whiten(X, _shape_params(alpha, score))


def _pair_shape(wx: _Whitened, wy: _Whitened, alpha: float = 1.0, score: str = "angular") -> float:
    return _shape_pair(wx, wy, score)


# ----------------------------------------------------------------------
# permutation metric
class _Centred(NamedTuple):
    data: np.ndarray
    sq_norm: float


def _prepare_permutation(X: np.ndarray, score: str = "angular") -> _Centred:
    check_choice(score, SCORES, "shape score")
    Xc = _centred(X)
    return _Centred(Xc, float(np.einsum("ij,ij->", Xc, Xc)))


def _pair_permutation(cx: _Centred, cy: _Centred, score: str = "angular") -> float:
    from scipy.optimize import linear_sum_assignment

    C = cx.data.T @ cy.data
    # Rectangular assignment = netrep's zero padding: each unit of the
    # narrower representation is matched to a distinct unit of the other.
    rows, cols = linear_sum_assignment(C, maximize=True)
    return _score(float(C[rows, cols].sum()), cx.sq_norm, cy.sq_norm, score)


def permutation_distance(X: Any, Y: Any, score: str = "angular") -> float:
    """Shape distance under the best one-to-one matching of units.

    Parameters
    ----------
    X : array-like, shape (n_stimuli, n_units_x) or (n_stimuli, ...)
        First representation.
    Y : array-like, shape (n_stimuli, n_units_y) or (n_stimuli, ...)
        Second representation, rows in the same stimulus order.
    score : {"angular", "euclidean"}
        Angular distance (in [0, pi]) or Euclidean distance after centring
        the columns and permuting the units of ``X`` to best match ``Y``
        (the narrower one zero-padded).

    Returns
    -------
    float
        Distance; 0 when the units of ``Y`` are a permutation of those of
        ``X`` (up to column offsets).

    Notes
    -----
    netrep's ``PermutationMetric``. The assignment costs
    ``O(max(p, q)**3)`` (Hungarian algorithm) after the ``O(n p q)`` product.
    """
    check_choice(score, SCORES, "shape score")
    X, Y = _paired(X, Y)
    return _pair_permutation(_prepare_permutation(X, score), _prepare_permutation(Y, score), score)


# ----------------------------------------------------------------------
# Gaussian stochastic shape metric
class _Gaussian(NamedTuple):
    """Per-stimulus Gaussians: means and factors ``F_i`` with ``S_i = F_i^T F_i``."""

    means: np.ndarray  # (n, p)
    factors: np.ndarray  # (n, r, p)
    #: (n, n_trials, p) trial deviations scaled like the factors; None for covariance input
    trials: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.means.shape


def _symmetric_sqrt(C: np.ndarray, name: str) -> np.ndarray:
    vals, vecs = np.linalg.eigh(C)
    floor = -1e-8 * np.maximum(np.abs(vals).max(axis=-1, keepdims=True), np.finfo(float).tiny)
    bad = np.argwhere(vals < floor)
    if bad.size:
        i = int(bad[0, 0])
        raise DataError(
            f"{name} covariance {i} is not positive semi-definite (eigenvalue {vals[i].min():.3g}); "
            "pass trial-resolved responses or valid covariance matrices."
        )
    return np.einsum("...ij,...j,...kj->...ik", vecs, np.sqrt(np.maximum(vals, 0.0)), vecs)


def _gaussian(data: Any, name: str) -> _Gaussian:
    """Trial-resolved responses ``(n_stimuli, n_trials, n_units...)`` or a ``(means, covariances)`` pair."""
    if isinstance(data, tuple) and len(data) == 2:
        means = _representation(data[0], f"{name} means").astype(np.float64, copy=False)
        n, p = means.shape
        covs = check_array(data[1], f"{name} covariances", dtype=np.float64)
        if covs.shape != (n, p, p):
            raise ShapeError(
                f"{name} covariances have shape {covs.shape}; expected (n_stimuli, n_units, n_units) = {(n, p, p)} "
                f"to match the means {means.shape}."
            )
        asym = np.abs(covs - covs.transpose(0, 2, 1)).max()
        if asym > 1e-8 * max(np.abs(covs).max(), np.finfo(float).tiny):
            raise DataError(f"{name} covariances are not symmetric (max |C - C^T| = {asym:.3g}).")
        return _Gaussian(means, _symmetric_sqrt(covs, name))
    arr = check_array(data, name, dtype=np.float64)
    if arr.ndim < 3:
        raise ShapeError(
            f"{name} has shape {arr.shape}; stochastic shape distances need trial-resolved responses "
            "(n_stimuli, n_trials, n_units) or a (means, covariances) pair."
        )
    arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
    n, r, p = arr.shape
    if r < 2:
        raise ShapeError(f"{name} has {r} trial per stimulus (shape {arr.shape}); covariances need at least 2.")
    means = arr.mean(axis=1)
    dev = (arr - means[:, None, :]) / np.sqrt(r - 1)  # S_i = dev_i^T dev_i, np.cov's ddof=1
    # A square root is the smaller factor when there are more trials than units.
    factors = _symmetric_sqrt(np.einsum("irp,irq->ipq", dev, dev), name) if r > p else dev
    return _Gaussian(means, factors, dev)


def _padded(g: _Gaussian, width: int, center: bool) -> _Gaussian:
    means, factors, trials = g
    if center:
        means = means - means.mean(axis=0)
    extra = width - means.shape[1]
    if extra:
        pad = ((0, 0), (0, 0), (0, extra))
        means = np.pad(means, pad[1:])
        factors = np.pad(factors, pad)
        trials = None if trials is None else np.pad(trials, pad)
    return _Gaussian(means, factors, trials)


def _align(K: np.ndarray, group: str) -> np.ndarray:
    """The ``T`` of ``group`` maximising ``<K, T>``."""
    if group == "orthogonal":
        U, _, Vt = np.linalg.svd(K)
        return U @ Vt
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(K, maximize=True)
    T = np.zeros_like(K)
    T[rows, cols] = 1.0
    return T


def _random_element(width: int, group: str, rng: np.random.Generator) -> np.ndarray:
    if group == "permutation":
        return np.eye(width)[rng.permutation(width)]
    Q, R = np.linalg.qr(rng.standard_normal((width, width)))
    return Q * np.sign(np.diag(R))  # Haar-distributed orthogonal matrix


def _stochastic_pair(
    gx: _Gaussian,
    gy: _Gaussian,
    alpha: float,
    group: str,
    center: bool,
    max_iter: int,
    tol: float,
    n_init: int,
    random_state: Any,
) -> float:
    width = max(gx.shape[1], gy.shape[1])
    mx, fx, tx = _padded(gx, width, center)
    my, fy, ty = _padded(gy, width, center)
    n = mx.shape[0]
    means_xy = my.T @ mx  # <m^y T, m^x> summed over stimuli = <means_xy, T>
    fixed = alpha * (np.sum(mx * mx) + np.sum(my * my)) + (2.0 - alpha) * (np.sum(fx * fx) + np.sum(fy * fy))
    w_cov = 2.0 - alpha

    def objective(T: np.ndarray) -> tuple[float, np.ndarray | None]:
        """alpha <means_xy, T> + (2 - alpha) sum_i ||F^x_i T^T F^y_i^T||_*, and the cross terms' polar factors."""
        value = alpha * float(np.vdot(means_xy, T))
        if w_cov == 0.0:
            return value, None
        cross = np.matmul(fx @ T.T, fy.transpose(0, 2, 1))  # (n, r_x, r_y)
        U, s, Vt = np.linalg.svd(cross, full_matrices=False)
        return value + w_cov * float(s.sum()), U @ Vt

    def climb(T: np.ndarray) -> float:
        value, Q = objective(T)
        for _ in range(max_iter if w_cov else 0):
            # Each nuclear norm is max_Q <Q, F^x T^T F^y^T>; with the Q of the
            # current T this bound is linear in T and tight, so maximising it
            # over the group never decreases the objective.
            T_new = _align(gradient(Q), group)
            new_value, Q_new = objective(T_new)
            if new_value < value:  # rounding at convergence
                break
            gain = new_value - value
            value, Q = new_value, Q_new
            if gain <= tol * max(abs(value), np.finfo(float).tiny):
                break
        return value

    def gradient(Q: np.ndarray | None) -> np.ndarray:
        if Q is None:
            return alpha * means_xy
        return alpha * means_xy + w_cov * (np.matmul(Q, fy).reshape(-1, width).T @ fx.reshape(-1, width))

    if group == "identity":
        value, _ = objective(np.eye(width))
    else:
        # The objective is not concave: climb from the alignment of the
        # means (netrep's start), from the identity, and from the alignment
        # of trial k of X with trial k of Y (exact when the trials are the
        # same events, as for simultaneously recorded regions), and keep the
        # best local optimum.
        starts = [_align(means_xy, group), np.eye(width)]
        if w_cov and tx is not None and ty is not None and tx.shape[1] == ty.shape[1]:
            matched = ty.reshape(-1, width).T @ tx.reshape(-1, width)  # sum_i D^y_i^T D^x_i
            starts.append(_align(alpha * means_xy + w_cov * matched, group))
        rng = np.random.default_rng(random_state)
        for _ in range(n_init):
            starts.append(_random_element(width, group, rng))
        value = max(climb(T) for T in starts)
    return float(np.sqrt(max((fixed - 2.0 * value) / n, 0.0)))


def _stochastic_params(alpha: Any, group: str, max_iter: Any, tol: Any, n_init: Any) -> tuple[float, int, float, int]:
    check_choice(group, GROUPS, "alignment group")
    for name, value in (("max_iter", max_iter), ("n_init", n_init)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise DataError(f"{name} must be a non-negative integer, got {value!r}.")
    return _check_alpha(alpha, 2.0), int(max_iter), check_positive(tol, "tol", strict=False), int(n_init)


def stochastic_shape_distance(
    X: Any,
    Y: Any,
    alpha: float = 1.0,
    *,
    group: str = "orthogonal",
    center: bool = True,
    max_iter: int = 1000,
    tol: float = 1e-10,
    n_init: int = 0,
    random_state: Any = None,
) -> float:
    """Gaussian stochastic shape metric between two noisy (trial-resolved) representations.

    Parameters
    ----------
    X : array-like or tuple
        Trial-resolved responses ``(n_stimuli, n_trials, n_units)`` (axes
        after the second are flattened), or a ``(means, covariances)`` pair of
        shapes ``(n_stimuli, n_units)`` and ``(n_stimuli, n_units, n_units)``.
        Covariances of trials use ``ddof=1`` (as ``numpy.cov``).
    Y : array-like or tuple
        Second representation, same stimuli in the same order (its numbers of
        trials and units may differ; the narrower one is zero-padded).
    alpha : float in [0, 2]
        Weight of means (``alpha``) against covariances (``2 - alpha``): 2
        means only, 1 the 2-Wasserstein distance, 0 covariances only
        (netrep's ``GaussianStochasticMetric`` convention).
    group : {"orthogonal", "permutation", "identity"}
        Alignments allowed between the representations.
    center : bool
        Remove the grand mean of each representation's means first (the
        translation invariance of :func:`shape_distance`); netrep does not
        (``center=False``).
    max_iter : int
        Iterations of the alternating optimisation from each start.
    tol : float
        Stop when an iteration improves the objective by less than ``tol``
        relative.
    n_init : int
        Random starts (Haar-distributed rotations or random permutations)
        added to the deterministic ones: the alignment of the means, the
        identity, and the alignment of trial ``k`` of ``X`` with trial ``k`` of
        ``Y`` (when both have the same number of trials).
    random_state : int or numpy.random.Generator, optional
        Seed of the random starts.

    Returns
    -------
    float
        Distance ``sqrt(mean_i [alpha ||m^x_i - T m^y_i||**2 + (2 - alpha) B**2])``
        at the best alignment ``T`` found (module documentation).

    Raises
    ------
    ShapeError
        Different numbers of stimuli, fewer than 2 trials, covariances whose
        shape does not match the means.
    DataError, UnknownNameError
        Covariances that are not symmetric positive semi-definite, ``alpha``
        outside [0, 2], unknown ``group``, negative ``max_iter``/``n_init``.

    Notes
    -----
    The objective is not concave in ``T``; each start climbs to a local
    optimum and the best is kept (a distance can only be overestimated).
    ``alpha = 2`` and ``group="identity"`` are solved exactly.
    """
    alpha, max_iter, tol, n_init = _stochastic_params(alpha, group, max_iter, tol, n_init)
    gx, gy = _gaussian(X, "X"), _gaussian(Y, "Y")
    _check_same_stimuli(gx.means, gy.means)
    return _stochastic_pair(gx, gy, alpha, group, center, max_iter, tol, n_init, random_state)


def _prepare_stochastic(g: _Gaussian, alpha=1.0, *, group="orthogonal", max_iter=1000, tol=1e-10, n_init=0, **_):
    _stochastic_params(alpha, group, max_iter, tol, n_init)
    return g


def _pair_stochastic(
    gx, gy, alpha=1.0, *, group="orthogonal", center=True, max_iter=1000, tol=1e-10, n_init=0, random_state=None
) -> float:
    alpha, max_iter, tol, n_init = _stochastic_params(alpha, group, max_iter, tol, n_init)
    return _stochastic_pair(gx, gy, alpha, group, center, max_iter, tol, n_init, random_state)
