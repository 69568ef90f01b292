"""Topological RSA (tRSA): geo-topological and geodesic transforms of RDMs.

Lin & Kriegeskorte, "The Topology and Geometry of Neural Representations"
(PNAS 2024; arXiv:2309.11028). The geo-topological (GT) transform

.. math::

    f_{l,u}(d) = \\begin{cases} 0 & d \\le l \\\\ (d - l) / (u - l) & l < d < u \\\\ 1 & d \\ge u \\end{cases}

maps the small dissimilarities to 0 (the same "place"), the large ones to 1
(no direct link) and keeps the geometry in between; the thresholds ``l`` and
``u`` are quantiles of the dissimilarities. The geodesic transform replaces
each dissimilarity by the shortest-path length on the graph whose edges are
the pairs below the RDM's maximum (after min-max normalisation), which turns
the GT matrix (RGTM) into a geodesic matrix (RGDM).

Both functions take and return :class:`~neuroenc.rsa.rdms.RDMs` (conditions
and metadata kept, the transform recorded in :attr:`RDMs.method` and in
metadata columns) or plain arrays of upper-triangle vectors or square
matrices (returned in the same layout), so their output goes wherever an RDM
goes: comparison, inference, searchlight. Numbers equal rsatoolbox 0.3.2's
``geotopological_transform`` and ``geodesic_transform`` in the modes that
reproduce it (see :doc:`/rsa_topology` for the differences and why the
defaults differ).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from neuroenc.errors import EmptySelectionError, NonFiniteError, ShapeError
from neuroenc.rsa.rdms import RDMs, to_matrices
from neuroenc.validation import check_array, check_choice, check_positive

__all__ = ["geotopological", "geodesic", "geotopological_thresholds"]

#: string values of ``disconnected`` in :func:`geodesic`
DISCONNECTED_POLICIES = ("inf", "beyond", "nan")


# ----------------------------------------------------------------------
# input / output in the caller's layout
def _as_rdms(rdms: Any, name: str = "rdms") -> tuple[RDMs, str | None]:
    """``(RDMs, layout)``: layout None for an RDMs input, else how to return an array."""
    if isinstance(rdms, RDMs):
        return rdms, None
    arr = check_array(rdms, name, ndim=(1, 2, 3), dtype=np.float64, allow_nonfinite=True)
    parsed = RDMs(arr)  # the container's checks: triangular length, square symmetric matrices, no Inf
    if arr.ndim == 1:
        layout = "vector"
    elif arr.ndim == 3:
        layout = "matrices"
    else:  # 2-D: one square RDM or a stack of vectors, as the container read it
        layout = "matrix" if parsed.vectors.shape != arr.shape else "vectors"
    return parsed, layout


def _in_layout(vectors: np.ndarray, layout: str) -> np.ndarray:
    if layout == "vector":
        return vectors[0]
    if layout == "vectors":
        return vectors
    mats = to_matrices(vectors)
    return mats[0] if layout == "matrix" else mats


def _check_not_all_missing(rdms: RDMs) -> None:
    empty = np.flatnonzero(np.isnan(rdms.vectors).all(axis=1))
    if empty.size:
        raise EmptySelectionError(
            f"RDM {int(empty[0])} has no dissimilarity (all {rdms.n_pairs} pairs are NaN); drop it first."
        )


def _check_quantile(value: Any, name: str) -> float:
    """A probability in [0, 1] (a private helper: validation.py has no range check)."""
    q = check_positive(value, name, strict=False)
    if q > 1.0:
        raise ShapeError(f"{name} is a quantile and must lie in [0, 1], got {value!r}.")
    return q


def _check_quantiles(low: Any, up: Any) -> tuple[float, float]:
    low = _check_quantile(low, "low")
    up = _check_quantile(up, "up")
    if low > up:
        raise ShapeError(f"low ({low}) must not exceed up ({up}).")
    return low, up


def _method_note(method: str | None, transform: str, **params: Any) -> str:
    """``"transform(method, key=value, ...)"``: readable, and nests when transforms are chained."""
    args = [method or "unknown"] + [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()]
    return f"{transform}({', '.join(args)})"


# ----------------------------------------------------------------------
# geo-topological transform
def _thresholds(vectors: np.ndarray, low: float, up: float, per_rdm: bool) -> np.ndarray:
    quantile = np.nanquantile if np.isnan(vectors).any() else np.quantile
    if per_rdm:
        return quantile(vectors, [low, up], axis=1).T
    return np.broadcast_to(quantile(vectors, [low, up]), (vectors.shape[0], 2))


def geotopological_thresholds(rdms: Any, low: float, up: float, *, per_rdm: bool = True) -> np.ndarray:
    """Dissimilarity values of the geo-topological thresholds.

    Parameters
    ----------
    rdms : RDMs or array-like
        RDMs (see :func:`geotopological`).
    low, up : float
        Lower and upper quantiles, ``0 <= low <= up <= 1``.
    per_rdm : bool
        Quantiles of each RDM's dissimilarities (default) or of all RDMs pooled.

    Returns
    -------
    numpy.ndarray, shape (n_rdms, 2)
        Lower and upper threshold of each RDM (NaN dissimilarities ignored).
    """
    low, up = _check_quantiles(low, up)
    parsed, _ = _as_rdms(rdms)
    _check_not_all_missing(parsed)
    return np.array(_thresholds(parsed.vectors, low, up, bool(per_rdm)))


def geotopological(rdms: Any, low: float, up: float, *, per_rdm: bool = True) -> RDMs | np.ndarray:
    """Geo-topological transform: 0 below the lower, 1 above the upper threshold, linear between.

    Parameters
    ----------
    rdms : RDMs or array-like
        An :class:`~neuroenc.rsa.rdms.RDMs`, or dissimilarities as
        ``(n_pairs,)`` / ``(n_rdms, n_pairs)`` upper-triangle vectors or
        ``(n, n)`` / ``(n_rdms, n, n)`` symmetric matrices with a zero
        diagonal. NaN marks a missing dissimilarity and stays NaN.
    low, up : float
        Lower and upper thresholds as quantiles of the dissimilarities,
        ``0 <= low <= up <= 1`` (e.g. ``0.1, 0.9``). ``low == up`` gives the
        binary adjacency ``d > threshold``.
    per_rdm : bool
        If True (default), each RDM is thresholded at its own quantiles, so an
        RDM's transform does not depend on which other RDMs are in the batch
        (subjects, searchlight centres, models of other scales). If False,
        the quantiles are taken over all RDMs pooled, as rsatoolbox 0.3.2's
        ``geotopological_transform`` does.

    Returns
    -------
    RDMs or numpy.ndarray
        Values in [0, 1], in the layout of the input. An RDMs output keeps
        the conditions and metadata, records the transform in ``method``
        (``"geotopological(<method>, low=..., up=..., per_rdm=...)"``) and
        adds the threshold values as metadata columns ``gt_lower`` and
        ``gt_upper``.

    Notes
    -----
    With ``t_l, t_u`` the threshold values, ``d <= t_l`` maps to 0,
    ``d >= t_u`` to 1 and ``t_l < d < t_u`` to ``(d - t_l) / (t_u - t_l)``.
    When ``t_l == t_u`` (``low == up``, ties at the quantiles, a constant
    RDM) the transform is the step ``d > t_l``, the limit of the ramp;
    a constant RDM thus becomes all zeros (rsatoolbox gives NaN, 0 / 0, for
    the values equal to the threshold). The transform is invariant to
    rescaling the RDMs.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroenc.rsa.topology import geotopological
    >>> d = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])  # one RDM of 4 conditions
    >>> geotopological(d, 0.2, 0.8).round(3)  # thresholds 0.2 and 0.5
    array([0.   , 0.   , 0.333, 0.667, 1.   , 1.   ])
    """
    low, up = _check_quantiles(low, up)
    per_rdm = bool(per_rdm)
    parsed, layout = _as_rdms(rdms)
    _check_not_all_missing(parsed)
    v = parsed.vectors
    th = _thresholds(v, low, up, per_rdm)
    lo, hi = th[:, :1], th[:, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (v - lo) / (hi - lo)
    out = np.where(v >= hi, 1.0, out)
    out = np.where(v <= lo, 0.0, out)  # last, so that lo == hi gives the step d > lo
    if layout is not None:
        return _in_layout(out, layout)
    metadata = parsed.metadata.copy()
    metadata["gt_lower"] = th[:, 0]
    metadata["gt_upper"] = th[:, 1]
    note = _method_note(parsed.method, "geotopological", low=low, up=up, per_rdm=per_rdm)
    return RDMs(out, parsed.conditions, note, metadata)


# ----------------------------------------------------------------------
# geodesic transform
def _check_disconnected(disconnected: Any) -> str | float:
    if isinstance(disconnected, str):
        return check_choice(disconnected, DISCONNECTED_POLICIES, "disconnected policy")
    if isinstance(disconnected, numbers.Real) and not isinstance(disconnected, bool):
        return check_positive(disconnected, "disconnected", strict=False)
    raise ShapeError(f"disconnected must be 'inf', 'beyond', 'nan' or a number >= 0, got {disconnected!r}.")


def _fill_disconnected(out: np.ndarray, components: np.ndarray, policy: str | float) -> None:
    """Replace the Inf of disconnected graphs in place according to ``policy``."""
    for r in np.flatnonzero(components > 1):
        row = out[r]
        cut = np.isinf(row)
        if policy == "nan":
            row[cut] = np.nan
        elif policy == "beyond":
            finite = row[np.isfinite(row)]
            row[cut] = (finite.max() if finite.size else 0.0) + 1.0
        else:
            row[cut] = policy


def geodesic(
    rdms: Any, *, zero_edges: bool = True, disconnected: str | float = "inf", n_jobs: int | None = None
) -> RDMs | np.ndarray:
    """Geodesic transform: shortest-path lengths on the graph of each RDM's non-maximal pairs.

    Each RDM is min-max normalised to [0, 1]; the pairs below 1 are the
    edges of a graph, with their normalised dissimilarity as length; the
    output is the length of the shortest path between every two conditions.
    Applied to a :func:`geotopological` RDM (whose values above the upper
    threshold are all 1) this gives the representational geo-topological
    distance matrix (RGDM) of tRSA: conditions linked by chains of short
    distances come close, and far pairs are measured along the data.

    Parameters
    ----------
    rdms : RDMs or array-like
        RDMs or arrays as for :func:`geotopological`. A NaN dissimilarity is
        not an edge and stays NaN in the output.
    zero_edges : bool
        If True (default), pairs at the RDM's minimum (normalised length 0,
        e.g. every pair below the lower geo-topological threshold) are edges
        of length 0. If False they are not edges at all, as in rsatoolbox
        0.3.2 (which builds the graph with networkx, where a zero entry of an
        adjacency matrix means "no edge"); use False to reproduce its numbers.
    disconnected : {"inf", "beyond", "nan"} or float
        Value between conditions in different connected components, where no
        path exists (e.g. between the categories of a categorical model RDM):

        * ``"inf"`` (default): rsatoolbox's value. An RDMs cannot hold Inf,
          so RDMs input with a disconnected graph raises; arrays get Inf.
        * ``"beyond"``: one unit (the normalised length of a cut pair) more
          than the RDM's largest finite geodesic distance. Ranks as Inf does,
          on the scale of the connected distances.
        * ``"nan"``: missing (comparisons skip those pairs).
        * a number ``>= 0``: that value.
    n_jobs : int or None
        Threads for the compiled kernel (None or -1: all cores).

    Returns
    -------
    RDMs or numpy.ndarray
        Geodesic distances in the layout of the input. An RDMs output keeps
        conditions and metadata, records
        ``"geodesic(<method>, zero_edges=...)"`` in ``method`` and the number
        of connected components of each graph in the metadata column
        ``geodesic_components``.

    Raises
    ------
    NonFiniteError
        For RDMs input with ``disconnected="inf"`` when a graph is
        disconnected.

    Notes
    -----
    A constant RDM normalises to all zeros (rsatoolbox: NaN, 0 / 0); with
    ``zero_edges=True`` its geodesic RDM is all zeros, with False every pair
    is disconnected. Graphs are solved by Floyd-Warshall in a compiled
    kernel, in parallel over RDMs.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroenc.rsa.topology import geodesic
    >>> geodesic(np.array([0.1, 0.9, 0.4]))  # pair (0, 2) is cut and measured via condition 1
    array([0.   , 0.375, 0.375])
    """
    policy = _check_disconnected(disconnected)
    zero_edges = bool(zero_edges)
    parsed, layout = _as_rdms(rdms)
    _check_not_all_missing(parsed)

    from neuroenc._kernels.graph import geodesic_batch

    out, components = geodesic_batch(parsed.vectors, parsed.n_conditions, zero_edges=zero_edges, n_jobs=n_jobs)
    if policy != "inf":
        _fill_disconnected(out, components, policy)
    if layout is not None:
        return _in_layout(out, layout)
    if policy == "inf" and (components > 1).any():
        first = int(np.flatnonzero(components > 1)[0])
        raise NonFiniteError(
            f"RDM {first} has a disconnected graph ({int(components[first])} components, e.g. the categories "
            f"of a categorical RDM): some geodesic distances are infinite, which RDMs cannot hold. Choose "
            f"disconnected='beyond' (past the farthest connected pair), 'nan' (missing) or a number."
        )
    metadata = parsed.metadata.copy()
    metadata["geodesic_components"] = components
    note = _method_note(parsed.method, "geodesic", zero_edges=zero_edges)
    return RDMs(out, parsed.conditions, note, metadata)
