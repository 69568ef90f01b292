"""Searchlight neighbourhoods: spheres in a masked volume, sensor neighbours x time windows.

A neighbourhood set maps each searchlight *centre* to the *features* (columns of
the data) it covers. Members are never stored for all centres at once: a sphere
is the same set of voxel offsets around every centre, and a sensor-time
neighbourhood is a channel's neighbours times a fixed window, so members are
generated per chunk of centres (memory independent of the number of centres).
Only the size of each neighbourhood is kept, so that centres can be processed
in groups of equal size.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import numpy as np

from neuroenc.errors import EmptySelectionError, LabelError, ShapeError
from neuroenc.validation import check_array, check_file, check_positive

__all__ = [
    "Neighbourhoods",
    "VolumeNeighbourhoods",
    "SensorTimeNeighbourhoods",
    "adjacency_from_info",
    "sphere_offsets",
]

#: Relative margin that keeps a voxel lying exactly on the sphere (in exact
#: arithmetic) outside it despite rounding in rotated or scaled affines.
_BOUNDARY_RTOL = 1e-9


class Neighbourhoods:
    """Base class: centres, the size of each neighbourhood, members per chunk.

    Attributes
    ----------
    n_centres : int
        Number of searchlight centres.
    n_features : int
        Number of data features the members index into.
    sizes : numpy.ndarray of int, shape (n_centres,)
        Number of features of each neighbourhood.
    """

    n_features: int
    sizes: np.ndarray

    @property
    def n_centres(self) -> int:
        """Number of searchlight centres."""
        return len(self.sizes)

    def members(self, centres: Any) -> np.ndarray:
        """Feature indices of some centres' neighbourhoods.

        Parameters
        ----------
        centres : array-like of int
            Centre numbers (``0 .. n_centres - 1``).

        Returns
        -------
        numpy.ndarray of int64, shape (len(centres), width)
            Row ``i`` holds the features of ``centres[i]`` in increasing order
            of position; negative entries are padding. Row ``i`` has exactly
            ``sizes[centres[i]]`` non-negative entries.
        """
        raise NotImplementedError

    def centre_table(self) -> dict[str, np.ndarray]:
        """Columns describing each centre (used as the metadata of searchlight RDMs)."""
        return {"centre": np.arange(self.n_centres)}

    def members_of(self, centre: int) -> np.ndarray:
        """Sorted feature indices of one centre's neighbourhood."""
        row = self.members(np.array([centre]))[0]
        return np.sort(row[row >= 0])

    def _check_centres(self, centres: Any) -> np.ndarray:
        centres = np.asarray(centres, dtype=np.int64).reshape(-1)
        if centres.size and (centres.min() < 0 or centres.max() >= self.n_centres):
            raise ShapeError(f"Centre numbers must lie in [0, {self.n_centres}).")
        return centres


def sphere_offsets(affine: Any, radius: float) -> np.ndarray:
    """Integer voxel offsets whose centres lie closer than ``radius`` mm.

    Parameters
    ----------
    affine : array-like, shape (4, 4)
        Voxel-to-world transform; only its linear part matters.
    radius : float
        Sphere radius in world units (mm). A voxel at exactly ``radius`` is
        outside, as in rsatoolbox's ``get_volume_searchlight``.

    Returns
    -------
    numpy.ndarray of int64, shape (n_offsets, 3)
        Offsets in lexicographic (C) order, so that adding them to a voxel
        index keeps the flat C-order indices increasing.
    """
    linear = np.asarray(affine, dtype=np.float64)[:3, :3]
    try:
        inverse = np.linalg.inv(linear)
    except np.linalg.LinAlgError as exc:
        raise ShapeError("The affine is singular; voxel sizes cannot be derived from it.") from exc
    # |o_i| = |inv_i . y| <= |inv_i| |y| < |inv_i| r bounds the box holding the sphere.
    half = np.floor(radius * np.linalg.norm(inverse, axis=1)).astype(np.int64)
    axes = [np.arange(-h, h + 1) for h in half]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    dist2 = np.einsum("ij,ij->i", grid @ linear.T, grid @ linear.T)
    return grid[dist2 < radius * radius * (1.0 - _BOUNDARY_RTOL)]


class VolumeNeighbourhoods(Neighbourhoods):
    """Spheres of a fixed radius (mm) around the voxels of a mask.

    Members are the mask voxels (features, in the C order of the mask, as
    :class:`~neuroenc.BrainData` and nilearn's maskers number them) whose
    centres lie closer than ``radius`` mm to the centre voxel. Spheres are
    truncated at the mask boundary.

    Parameters
    ----------
    mask : array-like of bool, shape (nx, ny, nz), nibabel image or path
        Brain mask; its True (non-zero) voxels are the features.
    affine : array-like, shape (4, 4), optional
        Voxel-to-world transform; taken from ``mask`` when it is an image.
    radius : float
        Sphere radius in mm.
    threshold : float
        A mask voxel is a centre when at least this fraction of the sphere's
        voxels inside the image lie in the mask (rsatoolbox's ``threshold``):
        0 keeps every mask voxel, 1 only spheres wholly inside the mask.

    Attributes
    ----------
    mask, affine, radius, threshold
        As given (validated).
    offsets : numpy.ndarray, shape (n_offsets, 3)
        The sphere as voxel offsets.
    centres : numpy.ndarray of int64, shape (n_centres,)
        Feature index (mask voxel number) of each centre.
    centre_ijk : numpy.ndarray of int64, shape (n_centres, 3)
        Voxel index of each centre.
    sizes : numpy.ndarray of int64, shape (n_centres,)
        Mask voxels in each sphere.
    """

    def __init__(self, mask: Any, affine: Any = None, *, radius: float, threshold: float = 0.0) -> None:
        if isinstance(mask, (str, os.PathLike)):
            import nibabel

            mask = nibabel.load(check_file(mask, "mask image"))
        if hasattr(mask, "affine") and hasattr(mask, "dataobj"):  # nibabel image
            if affine is None:
                affine = mask.affine
            mask = np.asarray(mask.dataobj)
        mask = check_array(mask, "mask", ndim=3, dtype=None)
        if mask.dtype != bool:
            mask = mask != 0
        if not mask.any():
            raise EmptySelectionError("The mask has no voxel.")
        if affine is None:
            raise ShapeError("A volume searchlight needs the mask's affine (voxel-to-mm transform).")
        affine = check_array(affine, "affine", dtype=np.float64)
        if affine.shape != (4, 4):
            raise ShapeError(f"affine must be 4x4, got shape {affine.shape}.")
        self.radius = check_positive(radius, "radius")
        threshold = float(threshold)
        if not 0.0 <= threshold <= 1.0:
            raise ShapeError(f"threshold must lie in [0, 1], got {threshold}.")
        self.mask, self.affine, self.threshold = mask, affine, threshold
        self.offsets = sphere_offsets(affine, self.radius)
        self.n_features = int(mask.sum())

        # Padded lookup volume: feature number inside the mask, -1 in the image
        # outside the mask, -2 outside the image, so that no bounds checks are needed.
        self._pad = np.abs(self.offsets).max(axis=0)
        index_dtype = np.int32 if self.n_features < 2**31 - 1 else np.int64
        lookup = np.full(tuple(np.array(mask.shape) + 2 * self._pad), -2, dtype=index_dtype)
        inner = tuple(slice(p, p + n) for p, n in zip(self._pad, mask.shape))
        lookup[inner] = -1
        lookup[inner][mask] = np.arange(self.n_features, dtype=index_dtype)
        self._lookup = lookup
        self._strides = np.array(lookup.strides) // lookup.itemsize
        self._offset_flat = self.offsets @ self._strides

        voxels = np.argwhere(mask)
        in_mask = np.empty(len(voxels), dtype=np.int64)
        in_image = np.empty(len(voxels), dtype=np.int64)
        for start in range(0, len(voxels), _chunk_rows(len(self.offsets))):
            rows = self._rows(voxels[start : start + _chunk_rows(len(self.offsets))])
            in_mask[start : start + len(rows)] = (rows >= 0).sum(axis=1)
            in_image[start : start + len(rows)] = (rows >= -1).sum(axis=1)
        keep = in_mask / in_image >= threshold  # rsatoolbox's mean over the sphere's image voxels
        if not keep.any():
            raise EmptySelectionError(
                f"No sphere of radius {self.radius:g} mm has a fraction {threshold:g} of its voxels in the mask."
            )
        self.centres = np.flatnonzero(keep)
        self.centre_ijk = voxels[keep]
        self.sizes = in_mask[keep]

    def _rows(self, ijk: np.ndarray) -> np.ndarray:
        base = (ijk + self._pad) @ self._strides
        return self._lookup.ravel()[base[:, None] + self._offset_flat[None, :]].astype(np.int64)

    def members(self, centres: Any) -> np.ndarray:  # noqa: D102 (documented on the base class)
        centres = self._check_centres(centres)
        return self._rows(self.centre_ijk[centres])

    def centre_table(self) -> dict[str, np.ndarray]:  # noqa: D102 (documented on the base class)
        i, j, k = self.centre_ijk.T
        return {"centre": np.arange(self.n_centres), "voxel": self.centres, "i": i, "j": j, "k": k}

    def select(self, centres: Any) -> VolumeNeighbourhoods:
        """The same spheres around a subset of the centres (e.g. a region of interest).

        Parameters
        ----------
        centres : array-like of int or bool
            Centre numbers, or a boolean mask over the centres.

        Returns
        -------
        VolumeNeighbourhoods
            Centres in the given order; the features are still all mask voxels.
        """
        keep = np.asarray(centres)
        if keep.dtype == bool:
            if keep.shape != (self.n_centres,):
                raise ShapeError(f"A boolean selection needs {self.n_centres} entries, got shape {keep.shape}.")
            keep = np.flatnonzero(keep)
        keep = self._check_centres(keep)
        if keep.size == 0:
            raise EmptySelectionError("No centre selected.")
        out = copy.copy(self)
        out.centres, out.centre_ijk, out.sizes = self.centres[keep], self.centre_ijk[keep], self.sizes[keep]
        return out

    def to_nifti(self, values: Any, fill: float = np.nan):
        """Put one value per centre (or per centre and map) into the mask's space.

        Parameters
        ----------
        values : array-like, shape (n_centres,) or (n_maps, n_centres)
            Values at the centres.
        fill : float
            Value of voxels that are not centres.

        Returns
        -------
        nibabel.Nifti1Image
            3-D for one map, 4-D ``(nx, ny, nz, n_maps)`` otherwise, with the
            mask's affine.
        """
        import nibabel

        values = check_array(values, "values", ndim=(1, 2), allow_nonfinite=True)
        if values.shape[-1] != self.n_centres:
            raise ShapeError(f"values have {values.shape[-1]} entries per map, there are {self.n_centres} centres.")
        maps = np.atleast_2d(values)
        vol = np.full(self.mask.shape + (len(maps),), fill, dtype=np.float64)
        i, j, k = self.centre_ijk.T
        vol[i, j, k, :] = maps.T
        img = nibabel.Nifti1Image(vol[..., 0] if values.ndim == 1 else vol, self.affine)
        img.header.set_xyzt_units("mm")
        return img


def _chunk_rows(width: int) -> int:
    """Rows per block so that a (rows, width) index block stays near 32 MB."""
    return max(1, (1 << 22) // max(1, width))


class SensorTimeNeighbourhoods(Neighbourhoods):
    """Each channel with its neighbours, over a window of samples around each time.

    Features are the ``(channel, sample)`` pairs of epochs
    ``(n_obs, n_channels, n_times)`` flattened in C order
    (feature ``c * n_times + t``). Centre ``(c, t)`` covers the channels
    adjacent to ``c`` (and ``c`` itself) at samples ``t - w .. t + w``; only
    times whose whole window lies inside the epoch are centres. Centres are
    numbered channel-major: centre ``c * n_centre_times + i``.

    Parameters
    ----------
    adjacency : array-like or scipy sparse matrix, shape (n_channels, n_channels)
        Channel adjacency (non-zero = neighbours), e.g. from
        :func:`mne.channels.find_ch_adjacency`. The diagonal is always included.
    n_times : int
        Samples per epoch.
    half_window : int
        ``w``: samples on each side of the centre sample (0: one sample).
    step : int
        Distance in samples between consecutive centre times.
    start : int, optional
        First centre sample (at least ``half_window``, the default).

    Attributes
    ----------
    adjacency : scipy.sparse.csr_array
        Boolean adjacency with the diagonal set.
    centre_samples : numpy.ndarray of int64
        Sample index of each centre time.
    sizes : numpy.ndarray of int64, shape (n_channels * n_centre_times,)
        Features per neighbourhood (neighbours x window length).
    """

    def __init__(
        self, adjacency: Any, n_times: int, *, half_window: int = 0, step: int = 1, start: int | None = None
    ) -> None:
        import scipy.sparse

        if scipy.sparse.issparse(adjacency):
            adj = scipy.sparse.csr_array(adjacency, dtype=bool)
        else:
            adj = scipy.sparse.csr_array(check_array(adjacency, "adjacency", ndim=2) != 0)
        if adj.shape[0] != adj.shape[1]:
            raise ShapeError(f"adjacency must be square (channels x channels), got shape {adj.shape}.")
        adj = (adj + scipy.sparse.eye_array(adj.shape[0], dtype=bool, format="csr")).astype(bool).tocsr()
        adj.sort_indices()
        self.adjacency = adj
        self.n_channels = adj.shape[0]
        self.n_times = _check_count(n_times, "n_times", 1)
        self.half_window = _check_count(half_window, "half_window", 0)
        self.step = _check_count(step, "step", 1)
        width = 2 * self.half_window + 1
        if width > self.n_times:
            raise ShapeError(f"A window of {width} samples does not fit in epochs of {self.n_times} samples.")
        start = self.half_window if start is None else _check_count(start, "start", self.half_window)
        self.centre_samples = np.arange(start, self.n_times - self.half_window, self.step, dtype=np.int64)
        if not len(self.centre_samples):
            raise ShapeError(f"No centre time: start {start} leaves no whole window in {self.n_times} samples.")
        self.n_features = self.n_channels * self.n_times
        degree = np.diff(adj.indptr).astype(np.int64)
        self.sizes = np.repeat(degree * width, len(self.centre_samples))
        # Neighbour lists padded with -1 to the largest degree.
        self._neighbours = np.full((self.n_channels, int(degree.max())), -1, dtype=np.int64)
        for c in range(self.n_channels):
            self._neighbours[c, : degree[c]] = adj.indices[adj.indptr[c] : adj.indptr[c + 1]]
        self._window = np.arange(-self.half_window, self.half_window + 1, dtype=np.int64)

    @property
    def n_centre_times(self) -> int:
        """Number of centre times per channel."""
        return len(self.centre_samples)

    def centre_table(self) -> dict[str, np.ndarray]:  # noqa: D102 (documented on the base class)
        channel, time = np.divmod(np.arange(self.n_centres), self.n_centre_times)
        return {"centre": np.arange(self.n_centres), "channel": channel, "sample": self.centre_samples[time]}

    def neighbours(self, channel: int) -> np.ndarray:
        """Channels in the neighbourhood of ``channel`` (itself included), sorted."""
        row = self._neighbours[channel]
        return row[row >= 0]

    def members(self, centres: Any) -> np.ndarray:  # noqa: D102 (documented on the base class)
        centres = self._check_centres(centres)
        channel, time = np.divmod(centres, self.n_centre_times)
        nbrs = self._neighbours[channel]  # (n, max_degree)
        samples = self.centre_samples[time][:, None] + self._window[None, :]  # (n, width)
        out = nbrs[:, :, None] * self.n_times + samples[:, None, :]
        out[np.broadcast_to(nbrs[:, :, None] < 0, out.shape)] = -1
        return out.reshape(len(centres), -1)


def _check_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ShapeError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ShapeError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def adjacency_from_info(info: Any, ch_type: str | None = None, names: Any = None):
    """Channel adjacency from MNE (:func:`mne.channels.find_ch_adjacency`).

    Parameters
    ----------
    info : mne.Info
        Measurement info with channel positions (a montage for EEG).
    ch_type : str, optional
        Channel type passed to MNE; default: the single data type of ``info``.
    names : sequence of str, optional
        Expected channel order; must equal MNE's (``info['ch_names']``).

    Returns
    -------
    scipy.sparse.csr_array
        Boolean ``(n_channels, n_channels)`` adjacency.
    """
    import mne

    if ch_type is None:
        types = sorted(set(info.get_channel_types()))
        if len(types) != 1:
            raise LabelError(f"info holds several channel types {types}; pass ch_type= or an adjacency.")
        ch_type = types[0]
    try:
        with mne.utils.use_log_level("error"):
            adjacency, ch_names = mne.channels.find_ch_adjacency(info, ch_type)
    except RuntimeError as exc:
        raise LabelError(
            f"MNE cannot derive a channel adjacency ({exc}); set a montage on the info "
            "(e.g. info.set_montage('standard_1005')) or pass adjacency=."
        ) from exc
    if len(ch_names) != len(info["ch_names"]) or (names is not None and list(ch_names) != list(names)):
        raise LabelError(
            f"MNE's adjacency covers {len(ch_names)} {ch_type} channel(s) in its own order; the data have "
            f"{len(info['ch_names'])} channels. Pick the {ch_type} channels first or pass adjacency=."
        )
    import scipy.sparse

    return scipy.sparse.csr_array(adjacency, dtype=bool)
