"""Per-layer statistics of network activations: sparsity, outliers, dimensionality, collapse, selectivity.

Every function takes the activations of one layer as an array
``(n_stimuli, n_units)`` (an N-D array is flattened after the stimulus
axis), or several layers as an :class:`~neuroenc.activationdata.Activations`
container or a mapping ``{layer name: array}``. For one array a function
returns its plain result (a number, an array, a small dataclass); for several
layers it returns a tidy :class:`pandas.DataFrame` with a ``layer`` column
(one row per layer, or per layer and unit for the per-unit statistics).
:func:`activation_statistics` gathers all the per-layer numbers in one table.

The definitions:

* sparsity: fraction of activations whose magnitude exceeds a threshold
  (:func:`fraction_nonzero`) and the share of each stimulus's L1 mass held by
  its k strongest units (:func:`top_k_mass`);
* dead units: units whose magnitude never exceeds the threshold
  (:func:`dead_units`);
* massive activations (Sun et al. 2024, "Massive activations in large
  language models"): magnitudes far above the median magnitude of their
  stimulus's activation vector (:func:`massive_activations`);
* effective dimensionality: the participation ratio of the covariance
  eigenvalues, ``(sum l)^2 / sum l^2`` (:func:`participation_ratio`), and the
  effective rank of Roy & Vetterli (2007), ``exp`` of the entropy of the
  L1-normalised singular values (:func:`effective_rank`);
* neural collapse (Papyan, Han & Donoho 2020): NC1 ``tr(Sw Sb^+) / C``,
  ``tr(Sw) / tr(Sb)``, equinorm and equiangularity of the class means
  (:func:`neural_collapse`);
* unit selectivity: localizer-style two-sample t-tests per unit between
  stimulus classes (e.g. faces vs objects), Welch or pooled, with
  multiple-comparison correction (:func:`unit_selectivity`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from neuroenc.errors import EmptySelectionError, LabelError, ShapeError
from neuroenc.rsa.stats import CORRECTIONS, correct_pvalues
from neuroenc.validation import check_array, check_choice, check_length, check_names, check_positive

__all__ = [
    "ALTERNATIVES",
    "MassiveActivations",
    "NeuralCollapse",
    "activation_statistics",
    "dead_units",
    "effective_rank",
    "fraction_nonzero",
    "massive_activations",
    "neural_collapse",
    "participation_ratio",
    "top_k_mass",
    "unit_selectivity",
]

#: alternatives accepted by :func:`unit_selectivity` (as in :func:`scipy.stats.ttest_ind`).
ALTERNATIVES = ("two-sided", "greater", "less")

#: float64 elements per block when a large layer is processed in slices.
_BLOCK_ELEMENTS = 2**22


# --------------------------------------------------------------------------- inputs


def _is_layered(acts: Any) -> bool:
    """Whether ``acts`` holds several layers (an ``Activations`` container or a mapping)."""
    return isinstance(acts, Mapping) or (hasattr(acts, "layer_names") and hasattr(acts, "flattened"))


def _unit_matrix(X: Any, name: str = "X") -> np.ndarray:
    """Activations as a real ``(n_stimuli, n_units)`` array, flattened after the stimulus axis.

    The dtype is kept for float input (float32 activations are not copied);
    the statistics are accumulated in float64.
    """
    arr = check_array(X, name)
    _check_layer_shape(arr.shape, name)
    if arr.dtype.kind == "c":
        raise ShapeError(f"{name} is complex; real activations are expected.")
    return arr.reshape(arr.shape[0], -1)


def _check_layer_shape(shape: tuple[int, ...], name: str) -> tuple[int, int]:
    """``(n_stimuli, n_units)`` of an activation array of this shape."""
    if len(shape) < 2:
        raise ShapeError(
            f"{name} has shape {shape}; expected (n_stimuli, n_units, ...). "
            "Reshape a single unit with X.reshape(-1, 1)."
        )
    n_units = int(np.prod(shape[1:]))
    if n_units == 0:
        raise ShapeError(f"{name} has no units (shape {shape}).")
    return int(shape[0]), n_units


class _Layers:
    """The layers of one input, validated, yielding ``(name, (n_stimuli, n_units) matrix)`` pairs.

    In-memory layers are all checked (shape, NaN/Inf, equal numbers of
    stimuli) when this is built, before any statistic is computed. Layers of
    a lazy (HDF5-backed) container have their shapes checked up front but
    are read and checked one at a time while iterating, so that a model's
    layers never all sit in memory at once. A single array is one layer
    named ``"X"``.
    """

    def __init__(self, acts: Any, layers: Sequence[str] | str | None = None) -> None:
        self.layered = _is_layered(acts)
        if not self.layered:
            if layers is not None:
                raise ShapeError("layers= selects layers of an Activations container or a mapping, not of an array.")
            self.names, self._get, self._lazy = ["X"], lambda _: acts, False
        else:
            self.names = list(acts.layer_names) if hasattr(acts, "layer_names") else list(acts)
            self._get = acts.__getitem__ if isinstance(acts, Mapping) else acts.flattened
            self._lazy = getattr(acts, "is_lazy", False) is True and hasattr(acts, "shapes")
        if layers is not None:
            self.names = check_names(layers, self.names, "layer")
        if not self.names:
            raise EmptySelectionError("No layers to analyse.")
        if self._lazy:
            self._matrices = None
            shapes = acts.shapes
            sizes = [_check_layer_shape(tuple(shapes[n]), self._what(n)) for n in self.names]
        else:
            self._matrices = [_unit_matrix(self._get(n), self._what(n)) for n in self.names]
            sizes = [m.shape for m in self._matrices]
        n_stimuli = {name: size[0] for name, size in zip(self.names, sizes)}
        if len(set(n_stimuli.values())) > 1:
            listed = ", ".join(f"{k!r}: {v}" for k, v in n_stimuli.items())
            raise ShapeError(f"Layers hold different numbers of stimuli ({listed}).")
        self.n_stimuli = sizes[0][0]
        self.n_units = [size[1] for size in sizes]

    def _what(self, name: str) -> str:
        return f"layer {name!r}" if self.layered else "X"

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for i, name in enumerate(self.names):
            if self._matrices is not None:
                yield name, self._matrices[i]
            else:
                yield name, _unit_matrix(self._get(name), self._what(name))

    def check_k(self, k: Any) -> int:
        """``k`` valid for every layer (``1 <= k <= n_units``)."""
        for name, n_units in zip(self.names, self.n_units):
            _check_k(k, n_units, f" (layer {name!r})" if self.layered else "")
        return int(k)

    def frame(self, rows: list[dict]) -> pd.DataFrame:
        """One row per layer: ``layer`` followed by the row's columns."""
        return pd.DataFrame([{"layer": name, **row} for name, row in zip(self.names, rows)])

    def result(self, rows: list[Any], to_row: Any) -> Any:
        """The single value for one array, else a per-layer frame of ``to_row(value)`` (a dict or a column name)."""
        if not self.layered:
            return rows[0]
        if isinstance(to_row, str):
            return self.frame([{to_row: v} for v in rows])
        return self.frame([to_row(v) for v in rows])


def _class_codes(labels: Any, n_stimuli: int, name: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """``(classes, codes)`` of one label per stimulus; at least two classes are required."""
    if labels is None:
        raise LabelError(f"{name} are required: one class label per stimulus.")
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise LabelError(f"{name} must be 1-D (one label per stimulus), got shape {lab.shape}.")
    check_length(n_stimuli, lab, name, of="stimuli")
    if lab.dtype.kind in "fc":
        check_array(lab, name)
    classes, codes = np.unique(lab, return_inverse=True)
    if len(classes) < 2:
        raise LabelError(f"{name} hold only 1 class ({classes[0]!r}); at least 2 classes are needed.")
    return classes, codes.ravel()


def _row_blocks(n_rows: int, n_cols: int) -> list[slice]:
    """Row slices whose float64 blocks hold about ``_BLOCK_ELEMENTS`` values."""
    step = max(1, _BLOCK_ELEMENTS // max(1, n_cols))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def _group_moments(M: np.ndarray, mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Count, mean and variance (ddof 1; NaN for one stimulus) of the rows ``mask`` of ``M``, per unit."""
    sub = np.asarray(M[mask], dtype=np.float64)
    n = sub.shape[0]
    mean = sub.mean(axis=0)
    var = ((sub - mean) ** 2).sum(axis=0) / (n - 1) if n > 1 else np.full(M.shape[1], np.nan)
    return n, mean, var


# --------------------------------------------------------------------------- sparsity and outliers


def _check_threshold(threshold: float) -> float:
    return check_positive(threshold, "threshold", strict=False)


def _fraction_nonzero(M: np.ndarray, threshold: float, relative: bool) -> float:
    count = 0
    for rows in _row_blocks(*M.shape):
        mag = np.abs(np.asarray(M[rows], dtype=np.float64))
        cut = threshold * mag.max(axis=1, keepdims=True) if relative else threshold
        count += int(np.count_nonzero(mag > cut))
    return count / M.size


def fraction_nonzero(X: Any, threshold: float = 0.0, *, relative: bool = False) -> float | pd.DataFrame:
    """Fraction of activations whose magnitude exceeds ``threshold``.

    ``1 - fraction_nonzero`` is the fraction of near-zero activations.

    Parameters
    ----------
    X : array-like, Activations or mapping
        ``(n_stimuli, n_units, ...)`` activations of one layer, or several layers.
    threshold : float
        An activation counts as non-zero where ``|x| > threshold``.
    relative : bool
        Take ``threshold`` relative to each stimulus's largest magnitude
        (``|x| > threshold * max_u |x_u|``).

    Returns
    -------
    float or pandas.DataFrame
        The fraction; for several layers a frame with columns ``layer``,
        ``fraction_nonzero``.
    """
    threshold = _check_threshold(threshold)
    layers = _Layers(X)
    return layers.result([_fraction_nonzero(M, threshold, relative) for _, M in layers], "fraction_nonzero")


def _top_k_mass(M: np.ndarray, k: int) -> float:
    total = 0.0
    for rows in _row_blocks(*M.shape):
        mag = np.abs(np.asarray(M[rows], dtype=np.float64))
        top = np.partition(mag, mag.shape[1] - k, axis=1)[:, mag.shape[1] - k :].sum(axis=1)
        norm = mag.sum(axis=1)
        # A stimulus with no activation at all is as sparse as can be.
        total += float(np.where(norm > 0, top / np.where(norm > 0, norm, 1.0), 1.0).sum())
    return total / M.shape[0]


def _check_k(k: Any, n_units: int, where: str = "", name: str = "k") -> int:
    """A number of units in ``[1, n_units]``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ShapeError(f"{name} must be a positive integer, got {k!r}.")
    if not 1 <= k <= n_units:
        raise ShapeError(f"{name}={k} is out of range: it must lie in [1, n_units={n_units}]{where}.")
    return int(k)


def top_k_mass(X: Any, k: int) -> float | pd.DataFrame:
    """Mean share of each stimulus's L1 activation mass held by its ``k`` largest-magnitude units.

    1 means every stimulus activates at most ``k`` units (k-sparse codes);
    ``k / n_units`` means activations of equal magnitude (dense codes).

    Parameters
    ----------
    X : array-like, Activations or mapping
        Activations of one layer ``(n_stimuli, n_units, ...)``, or several layers.
    k : int
        Number of units kept, ``1 <= k <= n_units`` (for every layer).

    Returns
    -------
    float or pandas.DataFrame
        The mean share; for several layers columns ``layer``, ``top_k_mass``.
    """
    layers = _Layers(X)
    k = layers.check_k(k)
    return layers.result([_top_k_mass(M, k) for _, M in layers], "top_k_mass")


def _dead_units(M: np.ndarray, threshold: float) -> np.ndarray:
    peak = np.zeros(M.shape[1])
    for rows in _row_blocks(*M.shape):
        np.maximum(peak, np.abs(np.asarray(M[rows], dtype=np.float64)).max(axis=0), out=peak)
    return np.flatnonzero(peak <= threshold)


def dead_units(X: Any, threshold: float = 0.0) -> np.ndarray | pd.DataFrame:
    """Units whose magnitude never exceeds ``threshold`` on any stimulus.

    For ReLU networks with ``threshold=0`` these are the units that never fire.

    Parameters
    ----------
    X : array-like, Activations or mapping
        Activations of one layer ``(n_stimuli, n_units, ...)``, or several layers.
    threshold : float
        A unit is dead where ``max_s |x_s| <= threshold``.

    Returns
    -------
    numpy.ndarray or pandas.DataFrame
        Indices of the dead units (into the flattened units); for several
        layers columns ``layer``, ``n_units``, ``n_dead``, ``fraction_dead``.
    """
    threshold = _check_threshold(threshold)
    layers = _Layers(X)
    values = [_dead_units(M, threshold) for _, M in layers]
    if not layers.layered:
        return values[0]
    rows = [
        {"n_units": n_units, "n_dead": len(dead), "fraction_dead": len(dead) / n_units}
        for n_units, dead in zip(layers.n_units, values)
    ]
    return layers.frame(rows)


@dataclass(frozen=True, eq=False)
class MassiveActivations:
    """Activations far larger than the typical magnitude of their stimulus (:func:`massive_activations`).

    Attributes
    ----------
    max_ratio : float
        Largest ``|x| / median`` over all activations (inf where a stimulus
        has a non-zero activation but no non-zero median).
    max_magnitude : float
        Largest ``|x|``.
    median_magnitude : float
        Median over stimuli of the per-stimulus median magnitude.
    n_massive : int
        Activations with ``|x| > ratio * median`` and ``|x| > min_magnitude``.
    fraction_massive : float
        ``n_massive / (n_stimuli * n_units)``.
    units : numpy.ndarray
        Units holding at least one massive activation, by decreasing largest magnitude.
    """

    max_ratio: float
    max_magnitude: float
    median_magnitude: float
    n_massive: int
    fraction_massive: float
    units: np.ndarray

    def summary(self) -> dict:
        """The scalar fields and ``n_massive_units`` (one row of a per-layer table)."""
        row = {k: v for k, v in asdict(self).items() if k != "units"}
        row["n_massive_units"] = len(self.units)
        return row


def _massive(M: np.ndarray, ratio: float, min_magnitude: float) -> MassiveActivations:
    max_ratio, max_mag, n_massive = 0.0, 0.0, 0
    medians = np.empty(M.shape[0])
    peak = np.zeros(M.shape[1])  # largest massive magnitude per unit (0: none)
    for rows in _row_blocks(*M.shape):
        mag = np.abs(np.asarray(M[rows], dtype=np.float64))
        # Zeros are left out of the median: in a ReLU layer most entries are 0,
        # and every firing unit would otherwise count as an outlier.
        with np.errstate(all="ignore"):
            med = np.nanmedian(np.where(mag > 0, mag, np.nan), axis=1) if mag.size else np.zeros(0)
        med = np.nan_to_num(med, nan=0.0)
        medians[rows] = med
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(mag > 0, mag / med[:, None], 0.0)
        massive = (rel > ratio) & (mag > min_magnitude)
        n_massive += int(massive.sum())
        max_ratio = max(max_ratio, float(rel.max()))
        max_mag = max(max_mag, float(mag.max()))
        np.maximum(peak, np.where(massive, mag, 0.0).max(axis=0), out=peak)
    units = np.flatnonzero(peak > 0)
    units = units[np.argsort(-peak[units], kind="stable")]
    return MassiveActivations(
        max_ratio=max_ratio,
        max_magnitude=max_mag,
        median_magnitude=float(np.median(medians)),
        n_massive=n_massive,
        fraction_massive=n_massive / M.size,
        units=units,
    )


def massive_activations(
    X: Any, ratio: float = 100.0, *, min_magnitude: float = 0.0
) -> MassiveActivations | pd.DataFrame:
    """Massive (outlier) activations: magnitudes far above their stimulus's median magnitude.

    Following Sun et al. (2024), an activation ``x`` of stimulus ``s`` is
    massive where ``|x| > ratio * median_u |x_su|`` and ``|x| > min_magnitude``.
    The median is taken over the non-zero magnitudes of the stimulus, so that
    the many exact zeros of rectified layers do not make every firing unit an
    outlier (for dense layers it is the plain median).

    Parameters
    ----------
    X : array-like, Activations or mapping
        Activations of one layer ``(n_stimuli, n_units, ...)``, or several layers.
    ratio : float
        Minimum ratio to the median magnitude (Sun et al. used about 1000
        for the residual stream of language models).
    min_magnitude : float
        Minimum absolute magnitude (Sun et al. used 100).

    Returns
    -------
    MassiveActivations or pandas.DataFrame
        For several layers, one row per layer with the fields of
        :meth:`MassiveActivations.summary`.
    """
    ratio = check_positive(ratio, "ratio")
    min_magnitude = check_positive(min_magnitude, "min_magnitude", strict=False)
    layers = _Layers(X)
    return layers.result([_massive(M, ratio, min_magnitude) for _, M in layers], MassiveActivations.summary)


# --------------------------------------------------------------------------- dimensionality


def _spectrum(M: np.ndarray, center: bool) -> np.ndarray:
    """Squared singular values of the (centred) matrix, descending; rounding-level ones set to 0.

    They are the eigenvalues of the Gram matrix of the smaller side,
    accumulated over float64 blocks so that float32 layers are never copied whole.
    """
    n, m = M.shape
    mean = M.mean(axis=0, dtype=np.float64) if center else np.zeros(m)
    if m >= n:  # stimuli x stimuli, summed over blocks of units
        K = np.zeros((n, n))
        step = max(1, _BLOCK_ELEMENTS // n)
        for start in range(0, m, step):
            cols = slice(start, min(start + step, m))
            B = np.asarray(M[:, cols], dtype=np.float64) - mean[cols]
            K += B @ B.T
    else:  # units x units, summed over blocks of stimuli
        K = np.zeros((m, m))
        for rows in _row_blocks(n, m):
            B = np.asarray(M[rows], dtype=np.float64) - mean
            K += B.T @ B
    lam = np.linalg.eigvalsh(K)[::-1].copy()
    if lam[0] <= 0:
        return np.zeros_like(lam)
    lam[lam <= lam[0] * max(n, m) * np.finfo(float).eps] = 0.0
    return lam


def _participation_ratio(lam: np.ndarray) -> float:
    return float(lam.sum() ** 2 / (lam**2).sum()) if lam[0] > 0 else 0.0


def _effective_rank(lam: np.ndarray) -> float:
    s = np.sqrt(lam[lam > 0])
    if s.size == 0:
        return 0.0
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def participation_ratio(X: Any) -> float | pd.DataFrame:
    """Participation ratio of the covariance eigenvalues, ``(sum l)^2 / sum l^2``.

    It lies between 1 (one direction carries all the variance) and
    ``min(n_stimuli - 1, n_units)`` (isotropic variance); a constant layer
    gives 0. With few stimuli the estimate is biased low (an isotropic
    Gaussian gives about ``n_units * n / (n + n_units)``).

    Parameters
    ----------
    X : array-like, Activations or mapping
        Activations of one layer ``(n_stimuli, n_units, ...)``, or several layers.

    Returns
    -------
    float or pandas.DataFrame
        For several layers, columns ``layer``, ``participation_ratio``.
    """
    layers = _Layers(X)
    return layers.result([_participation_ratio(_spectrum(M, True)) for _, M in layers], "participation_ratio")


def effective_rank(X: Any, *, center: bool = True) -> float | pd.DataFrame:
    """Effective rank of Roy & Vetterli (2007): ``exp`` of the entropy of the L1-normalised singular values.

    It lies between 1 and the rank of the matrix (equal to the rank when the
    non-zero singular values are equal); a zero matrix gives 0.

    Parameters
    ----------
    X : array-like, Activations or mapping
        Activations of one layer ``(n_stimuli, n_units, ...)``, or several layers.
    center : bool
        Subtract the mean over stimuli of each unit first (the spectrum of
        the representation's covariance); False uses the raw matrix as
        Roy & Vetterli do.

    Returns
    -------
    float or pandas.DataFrame
        For several layers, columns ``layer``, ``effective_rank``.
    """
    layers = _Layers(X)
    return layers.result([_effective_rank(_spectrum(M, bool(center))) for _, M in layers], "effective_rank")


# --------------------------------------------------------------------------- neural collapse


@dataclass(frozen=True)
class NeuralCollapse:
    """Neural-collapse measures of Papyan, Han & Donoho (2020) (:func:`neural_collapse`).

    With class means ``mu_c``, global mean ``mu_G`` (over all stimuli),
    within-class covariance ``Sw = 1/N sum_i (h_i - mu_c(i))(h_i - mu_c(i))^T``
    and between-class covariance ``Sb = 1/C sum_c (mu_c - mu_G)(mu_c - mu_G)^T``:

    Attributes
    ----------
    nc1 : float
        ``tr(Sw Sb^+) / C``; 0 when every stimulus sits on its class mean
        (inf when the class means coincide but the stimuli vary; the
        class-mean measures below are then NaN).
    within_between : float
        ``tr(Sw) / tr(Sb)``.
    equinorm : float
        Coefficient of variation (std / mean) of the norms ``||mu_c - mu_G||``;
        0 for class means of equal norm.
    equiangularity : float
        Standard deviation of the cosines between centred class means (pairs
        ``c != c'``); 0 for equiangular means.
    max_angle : float
        Mean of ``|cos + 1 / (C - 1)|`` over the pairs; 0 for a simplex
        equiangular tight frame (maximally separated means).
    n_classes : int
        Number of classes ``C``.
    """

    nc1: float
    within_between: float
    equinorm: float
    equiangularity: float
    max_angle: float
    n_classes: int


def _ratio(num: float, den: float) -> float:
    """``num / den`` with 0/0 -> NaN and x/0 -> inf."""
    if den > 0:
        return num / den
    return float("inf") if num > 0 else float("nan")


def _collapse(M: np.ndarray, codes: np.ndarray, n_classes: int) -> NeuralCollapse:
    n, m = M.shape
    means = np.empty((n_classes, m))
    W = np.empty((n, m))  # within-class deviations, needed again for NC1
    for c in range(n_classes):
        idx = np.flatnonzero(codes == c)
        sub = np.asarray(M[idx], dtype=np.float64)
        means[c] = sub.mean(axis=0)
        W[idx] = sub - means[c]
    within_sq = float(np.einsum("ij,ij->", W, W))
    grand = M.mean(axis=0, dtype=np.float64)
    centred = means - grand
    trace_w, trace_b = within_sq / n, float((centred**2).sum()) / n_classes
    if trace_b <= np.finfo(float).eps * (trace_w + trace_b + float(grand @ grand)):
        # Class means that differ by rounding errors only coincide: no geometry to measure.
        nan = float("nan")
        return NeuralCollapse(_ratio(trace_w, 0.0), _ratio(trace_w, 0.0), nan, nan, nan, n_classes)
    # Sb = centred.T @ centred / C has rank <= C - 1: its pseudo-inverse comes
    # from the SVD of the C x m class means, never from an m x m matrix.
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    keep = s**2 > s[0] ** 2 * m * np.finfo(float).eps
    proj = W @ vt[keep].T
    nc1 = float(((proj**2).sum(axis=0) / (n * s[keep] ** 2)).sum())
    norms = np.linalg.norm(centred, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = centred / norms[:, None]
        cos = (unit @ unit.T)[np.triu_indices(n_classes, k=1)]
        equinorm = float(norms.std() / norms.mean()) if norms.mean() > 0 else float("nan")
    return NeuralCollapse(
        nc1=nc1,
        within_between=_ratio(trace_w, trace_b),
        equinorm=equinorm,
        equiangularity=float(cos.std()),
        max_angle=float(np.abs(cos + 1.0 / (n_classes - 1)).mean()),
        n_classes=n_classes,
    )


def neural_collapse(X: Any, labels: Any) -> NeuralCollapse | pd.DataFrame:
    """Neural-collapse measures (NC1, variability ratio, equinorm, equiangularity) of labelled activations.

    Parameters
    ----------
    X : array-like, Activations or mapping
        Activations of one layer ``(n_stimuli, n_units, ...)``, or several layers.
    labels : array-like, shape (n_stimuli,)
        Class of each stimulus (at least two classes).

    Returns
    -------
    NeuralCollapse or pandas.DataFrame
        For several layers, one row per layer with the fields of
        :class:`NeuralCollapse`.

    Notes
    -----
    NC1 is computed from the SVD of the ``C x n_units`` centred class means,
    so wide layers never need an ``n_units x n_units`` matrix; singular values
    of ``Sb`` below ``n_units * eps`` times the largest are treated as zero
    (as :func:`numpy.linalg.pinv`).
    """
    layers = _Layers(X)
    classes, codes = _class_codes(labels, layers.n_stimuli)
    return layers.result([_collapse(M, codes, len(classes)) for _, M in layers], asdict)


# --------------------------------------------------------------------------- selectivity


def _as_label_list(value: Any) -> list:
    if isinstance(value, (str, bytes)) or np.ndim(value) == 0:
        return [value]
    return list(value)


def _contrast_masks(labels: np.ndarray, positive: Any, negative: Any) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the stimuli in the positive and negative classes."""
    available = list(np.unique(labels))
    pos = check_names(_as_label_list(positive), available, "class in positive")
    neg = [c for c in available if c not in pos] if negative is None else _as_label_list(negative)
    neg = check_names(neg, available, "class in negative")
    overlap = set(pos) & set(neg)
    if overlap:
        raise LabelError(f"Classes {sorted(overlap)!r} are in both positive and negative.")
    a, b = np.isin(labels, pos), np.isin(labels, neg)
    for what, mask in (("positive", a), ("negative", b)):
        if mask.sum() < 2:
            raise LabelError(f"The {what} classes hold {int(mask.sum())} stimulus/stimuli; at least 2 are needed.")
    return a, b


def _welch_t(
    M: np.ndarray, a: np.ndarray, b: np.ndarray, equal_var: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-unit two-sample t statistics of rows ``a`` versus rows ``b`` of ``M``.

    Returns ``(t, dof, mean_a, mean_b, pooled_sd)``. Units with no variance in
    either group get ``t = +-inf`` (different means) or NaN (equal means);
    their Welch degrees of freedom fall back to the pooled ones.
    """
    na, ma, va = _group_moments(M, a)
    nb, mb, vb = _group_moments(M, b)
    pooled_dof = na + nb - 2
    pooled_var = ((na - 1) * va + (nb - 1) * vb) / pooled_dof
    if equal_var:
        se2 = pooled_var * (1.0 / na + 1.0 / nb)
        dof = np.full(M.shape[1], float(pooled_dof))
    else:
        qa, qb = va / na, vb / nb
        se2 = qa + qb
        with np.errstate(invalid="ignore", divide="ignore"):
            dof = se2**2 / (qa**2 / (na - 1) + qb**2 / (nb - 1))
        dof = np.where(se2 > 0, dof, float(pooled_dof))
    diff = ma - mb
    with np.errstate(invalid="ignore", divide="ignore"):
        t = diff / np.sqrt(se2)
    return t, dof, ma, mb, np.sqrt(pooled_var)


def _p_values(t: np.ndarray, dof: np.ndarray, alternative: str) -> np.ndarray:
    from scipy.stats import t as t_dist

    if alternative == "greater":
        return t_dist.sf(t, dof)
    if alternative == "less":
        return t_dist.sf(-t, dof)
    return 2 * t_dist.sf(np.abs(t), dof)


def _selectivity(
    M: np.ndarray, a: np.ndarray, b: np.ndarray, equal_var: bool, alternative: str, correction: str
) -> pd.DataFrame:
    t, dof, ma, mb, sd = _welch_t(M, a, b, equal_var)
    p = _p_values(t, dof, alternative)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = (ma - mb) / sd
    return pd.DataFrame(
        {
            "unit": np.arange(M.shape[1]),
            "mean_positive": ma,
            "mean_negative": mb,
            "t": t,
            "dof": dof,
            "p": p,
            "p_adjusted": correct_pvalues(p, correction),
            "d": d,
        }
    )


def unit_selectivity(
    X: Any,
    labels: Any,
    positive: Any = None,
    negative: Any = None,
    *,
    equal_var: bool = False,
    alternative: str = "two-sided",
    correction: str = "fdr",
) -> pd.DataFrame:
    """Localizer-style selectivity of every unit: two-sample t-tests between stimulus classes.

    Parameters
    ----------
    X : array-like, Activations or mapping
        Activations of one layer ``(n_stimuli, n_units, ...)``, or several layers.
    labels : array-like, shape (n_stimuli,)
        Class of each stimulus.
    positive : label or sequence of labels, optional
        Preferred class(es), e.g. ``"face"``. None: each class in turn
        against all the others (one block of rows per class).
    negative : label or sequence of labels, optional
        Control class(es), e.g. ``["house", "chair"]``; None: every stimulus
        not in ``positive``.
    equal_var : bool
        Pooled-variance Student t (True) or Welch's t (False), as in
        :func:`scipy.stats.ttest_ind`.
    alternative : {"two-sided", "greater", "less"}
        "greater" tests ``mean_positive > mean_negative``.
    correction : {"fdr", "bonferroni", "holm", "none"}
        Multiple-comparison correction over the units of a layer (and
        contrast), see :func:`neuroenc.rsa.stats.correct_pvalues`.

    Returns
    -------
    pandas.DataFrame
        One row per unit: ``unit`` (index into the flattened units),
        ``mean_positive``, ``mean_negative``, ``t``, ``dof``, ``p``,
        ``p_adjusted`` and ``d`` (Cohen's d with the pooled standard
        deviation); preceded by ``layer`` for several layers and by
        ``positive`` (the class) when ``positive`` is None.
    """
    check_choice(alternative, ALTERNATIVES, "alternative")
    check_choice(correction, CORRECTIONS, "multiple-comparison correction")
    layers = _Layers(X)
    classes, codes = _class_codes(labels, layers.n_stimuli)
    lab = np.asarray(labels)
    if positive is None:
        if negative is not None:
            raise LabelError("negative= needs positive=; with positive=None each class is tested against the rest.")
        contrasts = [(c, *_contrast_masks(lab, c, None)) for c in classes]
    else:
        contrasts = [(None, *_contrast_masks(lab, positive, negative))]
    frames = []
    for name, M in layers:
        for cls, a, b in contrasts:
            frame = _selectivity(M, a, b, bool(equal_var), alternative, correction)
            if cls is not None:
                frame.insert(0, "positive", cls)
            if layers.layered:
                frame.insert(0, "layer", name)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- all statistics


def activation_statistics(
    acts: Any,
    labels: Any = None,
    *,
    threshold: float = 0.0,
    top_k: int | None = None,
    massive_ratio: float = 100.0,
    contrast: tuple[Any, Any] | None = None,
    alpha: float = 0.05,
    layers: Sequence[str] | str | None = None,
) -> pd.DataFrame:
    """All per-layer statistics of :mod:`neuroenc.activations.statistics` in one table.

    Parameters
    ----------
    acts : Activations, mapping or array-like
        Several layers, or one layer ``(n_stimuli, n_units, ...)`` (named ``"X"``).
    labels : array-like, shape (n_stimuli,), optional
        Class of each stimulus; adds the neural-collapse columns.
    threshold : float
        Magnitude threshold of :func:`fraction_nonzero` and :func:`dead_units`.
    top_k : int, optional
        Adds ``top_k_mass`` (:func:`top_k_mass` with this ``k``).
    massive_ratio : float
        ``ratio`` of :func:`massive_activations`.
    contrast : (positive, negative), optional
        Classes of a selectivity contrast (needs ``labels``; ``negative``
        may be None for "all other classes"): adds ``n_selective`` and
        ``fraction_selective``, the units with a one-sided Welch t-test
        ``positive > negative`` significant at ``alpha`` after FDR correction,
        and ``max_t``.
    alpha : float
        FDR level of the selectivity columns.
    layers : str or sequence of str, optional
        Layers to analyse (default all).

    Returns
    -------
    pandas.DataFrame
        One row per layer: ``layer``, ``n_stimuli``, ``n_units``,
        ``fraction_nonzero``, [``top_k_mass``], ``n_dead``, ``fraction_dead``,
        ``max_ratio``, ``n_massive``, ``participation_ratio``,
        ``effective_rank``, then with ``labels`` ``nc1``, ``within_between``,
        ``equinorm``, ``equiangularity``, ``max_angle``, and with ``contrast``
        ``n_selective``, ``fraction_selective``, ``max_t``.
    """
    threshold = _check_threshold(threshold)
    massive_ratio = check_positive(massive_ratio, "massive_ratio")
    alpha = check_positive(alpha, "alpha")
    chosen = _Layers(acts, layers)
    if top_k is not None:
        top_k = chosen.check_k(top_k)
    masks = None
    if labels is not None:
        classes, codes = _class_codes(labels, chosen.n_stimuli)
        if contrast is not None:
            masks = _contrast_masks(np.asarray(labels), *_contrast_pair(contrast))
    elif contrast is not None:
        raise LabelError("contrast= needs labels (one class per stimulus).")

    rows = []
    for _, M in chosen:
        lam = _spectrum(M, True)
        dead = _dead_units(M, threshold)
        row: dict[str, Any] = {"n_stimuli": M.shape[0], "n_units": M.shape[1]}
        row["fraction_nonzero"] = _fraction_nonzero(M, threshold, False)
        if top_k is not None:
            row["top_k_mass"] = _top_k_mass(M, top_k)
        row.update(n_dead=len(dead), fraction_dead=len(dead) / M.shape[1])
        massive = _massive(M, massive_ratio, 0.0)
        row.update(max_ratio=massive.max_ratio, n_massive=massive.n_massive)
        row.update(participation_ratio=_participation_ratio(lam), effective_rank=_effective_rank(lam))
        if labels is not None:
            collapse = asdict(_collapse(M, codes, len(classes)))
            collapse.pop("n_classes")
            row.update(collapse)
        if masks is not None:
            sel = _selectivity(M, *masks, False, "greater", "fdr")
            n_sel = int((sel["p_adjusted"] <= alpha).sum())
            row.update(n_selective=n_sel, fraction_selective=n_sel / M.shape[1], max_t=float(np.nanmax(sel["t"])))
        rows.append(row)
    return chosen.frame(rows)


def _contrast_pair(contrast: Any) -> tuple[Any, Any]:
    if not isinstance(contrast, (tuple, list)) or len(contrast) != 2:
        raise LabelError(f"contrast must be a pair (positive, negative), got {contrast!r}.")
    return contrast[0], contrast[1]
