"""The :class:`RDMs` container: several representational dissimilarity matrices.

RDMs are stored as upper triangles, row-major, in the order of
:func:`scipy.spatial.distance.squareform` (pairs (0,1), (0,2), ..., (1,2),
...). Missing dissimilarities are NaN (the comparison functions ignore such
pairs, as rsatoolbox does); infinite values are rejected.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from neuroenc._h5 import atomic_h5, open_h5_read, prepare_key, read_frame, require_group, write_frame
from neuroenc._version import __version__
from neuroenc.errors import EmptySelectionError, LabelError, NonFiniteError, ShapeError, StoreError
from neuroenc.validation import check_array, check_choice, check_length, check_names

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.axes

__all__ = ["RDMs", "n_pairs", "n_conditions_from_pairs", "to_vectors", "to_matrices"]

_STORE_KIND = "RDMs"
_FORMAT_VERSION = 1


def n_pairs(n_conditions: int) -> int:
    """Number of condition pairs, ``n (n - 1) / 2``."""
    return n_conditions * (n_conditions - 1) // 2


def n_conditions_from_pairs(n_pair: int) -> int:
    """Inverse of :func:`n_pairs`; raises :class:`ShapeError` if ``n_pair`` is not triangular."""
    n = int(round((1 + np.sqrt(1 + 8 * n_pair)) / 2))
    if n_pairs(n) != n_pair:
        raise ShapeError(f"{n_pair} dissimilarities do not form the upper triangle of a square matrix.")
    return n


def to_vectors(matrices: np.ndarray) -> np.ndarray:
    """Upper triangles (k=1) of ``(..., n, n)`` matrices, row-major as ``squareform``."""
    n = matrices.shape[-1]
    rows, cols = np.triu_indices(n, k=1)
    return matrices[..., rows, cols]


def to_matrices(vectors: np.ndarray) -> np.ndarray:
    """Symmetric matrices with a zero diagonal from upper-triangle vectors ``(..., n_pairs)``."""
    n = n_conditions_from_pairs(vectors.shape[-1])
    rows, cols = np.triu_indices(n, k=1)
    out = np.zeros(vectors.shape[:-1] + (n, n), dtype=vectors.dtype)
    out[..., rows, cols] = vectors
    out[..., cols, rows] = vectors
    return out


class RDMs:
    """One or more RDMs over the same conditions.

    Parameters
    ----------
    dissimilarities : array-like
        ``(n_rdms, n_pairs)`` upper-triangle vectors, ``(n_pairs,)`` for one
        RDM, ``(n_rdms, n_cond, n_cond)`` or ``(n_cond, n_cond)`` matrices
        (symmetric, zero diagonal).
    conditions : sequence, optional
        Label of each condition (unique); default ``0 .. n_cond - 1``.
    method : str, optional
        How the dissimilarities were computed (e.g. ``"crossnobis"``).
    metadata : pandas.DataFrame or dict, optional
        One row per RDM (subject, roi, time, session, ...). A dict maps
        column names to one value per RDM or a single value for all.

    Attributes
    ----------
    vectors : numpy.ndarray, shape (n_rdms, n_pairs)
        Dissimilarities.
    conditions : numpy.ndarray, shape (n_cond,)
        Condition labels.
    method : str or None
        Dissimilarity measure.
    metadata : pandas.DataFrame
        One row per RDM.
    """

    def __init__(
        self,
        dissimilarities: Any,
        conditions: Sequence[Any] | None = None,
        method: str | None = None,
        metadata: pd.DataFrame | dict | None = None,
    ) -> None:
        arr = check_array(dissimilarities, "dissimilarities", ndim=(1, 2, 3), dtype=np.float64, allow_nonfinite=True)
        if np.isinf(arr).any():
            pos = tuple(int(i) for i in np.argwhere(np.isinf(arr))[0])
            raise NonFiniteError(f"dissimilarities contain Inf at index {pos}; use NaN for missing values.")
        if arr.ndim == 1:
            arr = arr[None, :]
        elif arr.ndim == 2 and arr.shape[0] == arr.shape[1] and arr.shape[0] > 1 and _is_rdm_matrix(arr):
            arr = to_vectors(arr)[None, :]
        elif arr.ndim == 3:
            if arr.shape[1] != arr.shape[2]:
                raise ShapeError(f"RDM matrices must be square; got shape {arr.shape}.")
            _check_matrices(arr)
            arr = to_vectors(arr)
        self.vectors = np.ascontiguousarray(arr)
        n_cond = n_conditions_from_pairs(self.vectors.shape[1])
        if n_cond < 2:
            raise ShapeError("An RDM needs at least 2 conditions.")
        conditions = np.arange(n_cond) if conditions is None else np.asarray(list(conditions))
        if conditions.ndim != 1:
            raise ShapeError(f"conditions must be a flat sequence of labels, got shape {conditions.shape}.")
        check_length(n_cond, conditions, "conditions", of="conditions in the RDMs")
        if len(pd.unique(conditions)) != n_cond:
            dup = pd.Series(conditions)[pd.Series(conditions).duplicated()].iloc[0]
            raise LabelError(f"Condition labels must be unique; {dup!r} is repeated.")
        self.conditions = conditions
        self.method = method
        self.metadata = _as_metadata(metadata, self.n_rdms)

    # ------------------------------------------------------------------
    @property
    def n_rdms(self) -> int:
        """Number of RDMs."""
        return self.vectors.shape[0]

    @property
    def n_conditions(self) -> int:
        """Number of conditions."""
        return len(self.conditions)

    @property
    def n_pairs(self) -> int:
        """Number of condition pairs."""
        return self.vectors.shape[1]

    @property
    def matrices(self) -> np.ndarray:
        """``(n_rdms, n_cond, n_cond)`` symmetric matrices with a zero diagonal."""
        return to_matrices(self.vectors)

    def __len__(self) -> int:
        return self.n_rdms

    def __repr__(self) -> str:
        cols = ", ".join(map(str, self.metadata.columns)) or "none"
        return (
            f"<RDMs | {self.n_rdms} RDM(s) x {self.n_conditions} conditions, method={self.method!r}, metadata: {cols}>"
        )

    def copy(self) -> RDMs:
        """A deep copy."""
        return RDMs(self.vectors.copy(), self.conditions.copy(), self.method, self.metadata.copy())

    def _with(self, vectors: np.ndarray, conditions: np.ndarray | None = None, metadata: pd.DataFrame | None = None):
        return RDMs(
            vectors,
            self.conditions if conditions is None else conditions,
            self.method,
            self.metadata if metadata is None else metadata,
        )

    # ------------------------------------------------------------------
    # selection
    def __getitem__(self, key: Any) -> RDMs:
        """RDMs by integer index, slice, integer array or boolean mask."""
        if isinstance(key, (int, np.integer)):
            key = [int(key)]
        idx = np.arange(self.n_rdms)[key]
        if idx.size == 0:
            raise EmptySelectionError("The selection matched no RDM.")
        return self._with(self.vectors[idx], metadata=self.metadata.iloc[idx].reset_index(drop=True))

    def select(self, query: str | None = None, **criteria: Any) -> RDMs:
        """RDMs whose metadata match (``column=value(s)`` and/or a pandas query string)."""
        check_names(criteria, self.metadata.columns, "metadata column")
        keep = np.ones(self.n_rdms, dtype=bool)
        for col, value in criteria.items():
            values = [value] if np.isscalar(value) or value is None else list(value)
            keep &= self.metadata[col].isin(values).to_numpy()
        if query is not None:
            try:
                matched = self.metadata.query(query).index
            except Exception as exc:
                raise LabelError(
                    f"Cannot evaluate query {query!r} on metadata {list(self.metadata.columns)}: {exc}"
                ) from exc
            qmask = np.zeros(self.n_rdms, dtype=bool)
            qmask[self.metadata.index.get_indexer(matched)] = True
            keep &= qmask
        if not keep.any():
            raise EmptySelectionError(f"No RDM matches query={query!r}, criteria={criteria!r}.")
        return self[np.flatnonzero(keep)]

    def subset_conditions(self, conditions: Sequence[Any]) -> RDMs:
        """RDMs restricted to (and reordered as) the given conditions."""
        conditions = list(conditions)
        check_names(conditions, list(self.conditions), "condition")
        if len(set(conditions)) != len(conditions):
            raise LabelError("subset_conditions got repeated conditions.")
        if len(conditions) < 2:
            raise ShapeError("An RDM needs at least 2 conditions.")
        pos = {c: i for i, c in enumerate(self.conditions)}
        idx = np.array([pos[c] for c in conditions])
        mats = self.matrices[:, idx][:, :, idx]
        return self._with(to_vectors(mats), conditions=np.asarray(self.conditions)[idx])

    reorder = subset_conditions

    # ------------------------------------------------------------------
    # transforms
    def rank_transform(self, method: str = "average") -> RDMs:
        """Replace dissimilarities by their ranks within each RDM (ties as ``scipy.stats.rankdata``; NaN kept)."""
        from scipy.stats import rankdata

        check_choice(method, ("average", "min", "max", "dense", "ordinal"), "rank method")
        out = np.full_like(self.vectors, np.nan)
        for i, v in enumerate(self.vectors):
            ok = ~np.isnan(v)
            out[i, ok] = rankdata(v[ok], method=method)
        return self._with(out)

    def sqrt_transform(self) -> RDMs:
        """Square root of the dissimilarities (negative values, e.g. of crossnobis, are set to 0 first)."""
        return self._with(np.sqrt(np.maximum(self.vectors, 0.0)))

    # ------------------------------------------------------------------
    # combining
    @staticmethod
    def concatenate(items: Sequence[RDMs]) -> RDMs:
        """Stack RDMs over the same conditions; metadata are the union of columns."""
        items = list(items)
        if not items:
            raise EmptySelectionError("Nothing to concatenate.")
        first = items[0]
        for i, item in enumerate(items[1:], start=1):
            if not np.array_equal(item.conditions, first.conditions):
                raise LabelError(f"RDMs {i} have other conditions (or order) than RDMs 0.")
        method = first.method if all(it.method == first.method for it in items) else None
        metadata = pd.concat([it.metadata for it in items], ignore_index=True)
        return RDMs(np.concatenate([it.vectors for it in items]), first.conditions, method, metadata)

    # ------------------------------------------------------------------
    # plotting
    def plot(
        self, index: int = 0, ax: matplotlib.axes.Axes | None = None, cmap: str = "viridis", labels: bool = True
    ) -> matplotlib.axes.Axes:
        """Heatmap of one RDM."""
        import matplotlib.pyplot as plt

        if not 0 <= index < self.n_rdms:
            raise ShapeError(f"index {index} out of range for {self.n_rdms} RDM(s).")
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 4.5))
        im = ax.imshow(self.matrices[index], cmap=cmap, interpolation="nearest")
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=self.method or "dissimilarity")
        if labels and self.n_conditions <= 40:
            ticks = np.arange(self.n_conditions)
            ax.set_xticks(ticks, [str(c) for c in self.conditions], rotation=90, fontsize=7)
            ax.set_yticks(ticks, [str(c) for c in self.conditions], fontsize=7)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        title = (
            ", ".join(f"{k}={v}" for k, v in self.metadata.iloc[index].items()) if len(self.metadata.columns) else ""
        )
        ax.set_title(title, fontsize=9)
        return ax

    def mds(self, index: int = 0, n_components: int = 2, random_state: int | None = 0) -> np.ndarray:
        """Metric MDS embedding ``(n_cond, n_components)`` of one RDM (scikit-learn's SMACOF)."""
        from sklearn.manifold import MDS

        D = self.matrices[index]
        if np.isnan(D).any():
            raise NonFiniteError("MDS needs an RDM without missing (NaN) dissimilarities.")
        try:  # scikit-learn >= 1.8 names the input kind ``metric``
            mds = MDS(n_components, metric="precomputed", init="classical_mds", random_state=random_state)
        except TypeError:
            mds = MDS(n_components, dissimilarity="precomputed", random_state=random_state, n_init=4)
        return mds.fit_transform(np.maximum(D, 0.0))

    def plot_mds(self, index: int = 0, ax: matplotlib.axes.Axes | None = None) -> matplotlib.axes.Axes:
        """Scatter plot of the 2-D MDS embedding of one RDM, points labelled by condition."""
        import matplotlib.pyplot as plt

        xy = self.mds(index)
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 5))
        ax.scatter(xy[:, 0], xy[:, 1], s=18)
        if self.n_conditions <= 40:
            for (x, y), c in zip(xy, self.conditions):
                ax.annotate(str(c), (x, y), fontsize=7, xytext=(2, 2), textcoords="offset points")
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        return ax

    # ------------------------------------------------------------------
    # HDF5
    def to_hdf5(self, path: str | os.PathLike, key: str = "rdms", *, overwrite: bool = False) -> None:
        """Store under ``key`` in an HDF5 file, atomically (see :meth:`neuroenc.BrainData.to_hdf5`)."""
        conditions = pd.DataFrame({"condition": self.conditions})
        with atomic_h5(path, replace=key if overwrite else None) as f:
            prepare_key(f, key, overwrite)
            g = f.create_group(key)
            g.attrs["neuroenc_type"] = _STORE_KIND
            g.attrs["format_version"] = _FORMAT_VERSION
            g.attrs["neuroenc_version"] = __version__
            g.attrs["method"] = json.dumps(self.method)
            g.create_dataset("vectors", data=self.vectors, compression="gzip" if self.vectors.size > 4096 else None)
            write_frame(g, "conditions", conditions)
            write_frame(g, "metadata", self.metadata)

    @classmethod
    def from_hdf5(cls, path: Any, key: str = "rdms") -> RDMs:
        """Read RDMs written by :meth:`to_hdf5`."""
        with open_h5_read(path) as f:
            g = require_group(f, key, _STORE_KIND)
            if int(g.attrs.get("format_version", 0)) > _FORMAT_VERSION:
                raise StoreError(f"Entry {key!r} was written by a newer neuroenc; upgrade to read it.")
            return cls(
                g["vectors"][()],
                read_frame(g, "conditions")["condition"].to_numpy(),
                json.loads(g.attrs["method"]),
                read_frame(g, "metadata"),
            )

    # ------------------------------------------------------------------
    # interoperability
    def to_rsatoolbox(self):
        """The same RDMs as an ``rsatoolbox.rdm.RDMs`` (needs rsatoolbox)."""
        from rsatoolbox.rdm import RDMs as RsaRDMs

        rdm_desc = {str(c): list(self.metadata[c]) for c in self.metadata.columns}
        return RsaRDMs(
            self.vectors.copy(),
            dissimilarity_measure=self.method,
            rdm_descriptors=rdm_desc or None,
            pattern_descriptors={"conds": list(self.conditions)},
        )

    @classmethod
    def from_rsatoolbox(cls, rdms: Any) -> RDMs:
        """Convert an ``rsatoolbox.rdm.RDMs``."""
        pattern = rdms.pattern_descriptors
        conditions = pattern.get("conds", pattern.get("index"))
        meta = {k: list(v) for k, v in rdms.rdm_descriptors.items() if k != "index"}
        return cls(rdms.get_vectors(), conditions, rdms.dissimilarity_measure, meta or None)


def _is_rdm_matrix(arr: np.ndarray) -> bool:
    """A 2-D input is one square RDM when it is symmetric with a zero diagonal."""
    with np.errstate(invalid="ignore"):
        diag_zero = np.all(np.nan_to_num(np.diag(arr)) == 0)
        sym = np.allclose(arr, arr.T, equal_nan=True, rtol=1e-10, atol=1e-12)
    return bool(diag_zero and sym)


def _check_matrices(arr: np.ndarray) -> None:
    for i, mat in enumerate(arr):
        diag = np.diag(mat)
        if np.any(np.nan_to_num(diag) != 0):
            raise ShapeError(f"RDM {i} has a non-zero diagonal.")
        if not np.allclose(mat, mat.T, equal_nan=True, rtol=1e-10, atol=1e-12):
            raise ShapeError(f"RDM {i} is not symmetric.")


def _as_metadata(metadata: pd.DataFrame | dict | None, n: int) -> pd.DataFrame:
    if metadata is None:
        return pd.DataFrame(index=pd.RangeIndex(n))
    if isinstance(metadata, dict):
        cols = {}
        for k, v in metadata.items():
            if np.isscalar(v) or v is None:
                cols[k] = [v] * n
            else:
                v = list(v)
                check_length(n, v, f"metadata {k!r}", of="RDMs")
                cols[k] = v
        return pd.DataFrame(cols, index=pd.RangeIndex(n))
    if not isinstance(metadata, pd.DataFrame):
        raise LabelError(f"metadata must be a DataFrame or a dict, got {type(metadata).__name__}.")
    check_length(n, metadata, "metadata", of="RDMs")
    return metadata.reset_index(drop=True)
