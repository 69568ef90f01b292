"""The :class:`Activations` container: per-layer activations of a network for a stimulus set.

One container holds what :func:`neuroenc.activations.extract.extract_activations`
returns and what a user brings precomputed (numpy arrays, ``.npz`` files,
HDF5 files written by neuroenc or by other tools). Layers may live in memory
or stay in an HDF5 file and be read on access, so that activations larger
than memory can be analysed one layer at a time.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neuroenc._h5 import (
    COMPRESSIONS,
    STRING_DTYPE,
    atomic_h5,
    list_entries,
    open_h5_read,
    prepare_key,
    read_rows,
    write_array,
)
from neuroenc._version import __version__
from neuroenc.errors import EmptySelectionError, LabelError, ShapeError, StoreError, UnknownNameError
from neuroenc.validation import check_array, check_choice, check_names

__all__ = ["Activations"]

STORE_KIND = "Activations"
FORMAT_VERSION = 1
_GLOB_CHARS = "*?["
_MAX_LISTED = 10


# --------------------------------------------------------------------------
# Layer names inside HDF5 groups
# --------------------------------------------------------------------------
def h5_layer_name(layer: str) -> str:
    """HDF5-safe dataset name of a layer (``/`` would nest groups, ``.`` is the group itself)."""
    quoted = layer.replace("%", "%25").replace("/", "%2F")
    return "%2E" if quoted == "." else quoted


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """A predicate matching dotted names against a glob, segment-aware like shell paths.

    ``*`` and ``?`` stay within one ``.``-separated segment, ``**`` spans
    segments, ``[abc]`` and ``[!abc]`` are character classes.

    ``"features.*"`` matches ``features.0`` but not ``features.0.conv``;
    ``"encoder.**.linear2"`` matches ``linear2`` at any depth under ``encoder``.
    """
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^.]*")
        elif c == "?":
            out.append("[^.]")
        elif c == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    regex = re.compile("".join(out) + r"\Z", re.DOTALL)
    return lambda name: regex.match(name) is not None


def is_glob(pattern: str) -> bool:
    """Whether ``pattern`` holds glob characters."""
    return any(c in pattern for c in _GLOB_CHARS)


def match_names(requested: str | Iterable[str], available: Sequence[str], what: str) -> list[str]:
    """Names of ``available`` matching exact names or globs (:func:`glob_matcher`), in ``available`` order.

    Unknown names raise :class:`UnknownNameError` listing the closest
    available names (the full list can be long, e.g. every module of a network).
    """
    import difflib

    if isinstance(requested, str):
        requested = [requested]
    requested = list(requested)
    if not requested:
        raise EmptySelectionError(f"No {what} requested.")
    chosen: set[str] = set()
    unknown: list[str] = []
    for pattern in requested:
        if not isinstance(pattern, str):
            raise UnknownNameError(f"{what} names must be strings, got {pattern!r}.")
        if pattern in available:
            chosen.add(pattern)
            continue
        hits = [name for name in available if glob_matcher(pattern)(name)] if is_glob(pattern) else []
        if hits:
            chosen.update(hits)
        else:
            unknown.append(pattern)
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, available, n=5, cutoff=0.5)
            hints.append(f"{name!r} (closest: {', '.join(map(repr, close))})" if close else repr(name))
        shown = ", ".join(map(repr, available[:_MAX_LISTED])) or "none"
        more = f", ... ({len(available)} in total)" if len(available) > _MAX_LISTED else ""
        raise UnknownNameError(f"Unknown {what}: {'; '.join(hints)}. Names or globs of: {shown}{more}.")
    return [name for name in available if name in chosen]


def per_layer(spec: Any, layer_names: Sequence[str], what: str) -> dict[str, Any]:
    """Spread ``spec`` over layers: one value for all, or a dict ``{name or glob: value}``.

    Exact names take precedence over globs, then the first matching glob
    wins; layers matched by no key get None. A key matching no layer raises.
    """
    names = list(layer_names)
    if not isinstance(spec, Mapping):
        return dict.fromkeys(names, spec)
    matchers = {}
    for key in spec:
        if not isinstance(key, str):
            raise UnknownNameError(f"{what} keys must be layer names or globs, got {key!r}.")
        matchers[key] = glob_matcher(key)
        if key not in names and not any(matchers[key](n) for n in names):
            raise UnknownNameError(
                f"{what} has key {key!r}, which matches no selected layer; layers: {', '.join(map(repr, names))}."
            )
    chosen = {}
    for name in names:
        key = name if name in spec else next((k for k in spec if matchers[k](name)), None)
        chosen[name] = spec[key] if key is not None else None
    return chosen


# --------------------------------------------------------------------------
# Lazy layers
# --------------------------------------------------------------------------
class H5Layer:
    """A layer kept in an HDF5 dataset and read from disk on each access.

    The file is opened only while reading, so no handle stays open between
    accesses and the file may be moved or copied in the meantime.
    """

    def __init__(self, path: str | os.PathLike, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path = Path(path).expanduser().resolve()
        self.name = name
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)

    @classmethod
    def from_dataset(cls, ds: Any) -> H5Layer:
        """Reference an open :class:`h5py.Dataset` (it must belong to a file on disk)."""
        return cls(ds.file.filename, ds.name, ds.shape, ds.dtype)

    def read(self, rows: np.ndarray | None = None) -> np.ndarray:
        """All rows, or the given row positions, as an array."""
        with open_h5_read(self.path) as f:
            if self.name not in f:
                raise StoreError(f"Dataset {self.name!r} is no longer in {self.path}; the file was changed.")
            ds = f[self.name]
            if ds.shape != self.shape:
                raise StoreError(f"Dataset {self.name!r} in {self.path} changed shape from {self.shape} to {ds.shape}.")
            return read_rows(ds, rows)

    def __repr__(self) -> str:
        return f"<H5Layer {self.path}:{self.name} {self.shape} {self.dtype}>"


def _check_layer(name: Any, value: Any) -> np.ndarray | H5Layer:
    if not isinstance(name, str) or not name:
        raise UnknownNameError(f"Layer names must be non-empty strings, got {name!r}.")
    if isinstance(value, H5Layer):
        layer = value
    elif type(value).__module__.startswith("h5py") and hasattr(value, "file"):  # h5py.Dataset, no import needed
        layer = H5Layer.from_dataset(value)
    else:
        if type(value).__module__.startswith("torch"):
            value = value.detach().cpu().numpy()
        layer = check_array(value, f"layer {name!r}", dtype="numeric")
    if len(layer.shape) == 0:
        raise ShapeError(f"layer {name!r} is a scalar; expected an array (n_stimuli, ...).")
    if layer.dtype.kind not in "biufc":
        raise ShapeError(f"layer {name!r} has dtype {layer.dtype}; expected a numeric array.")
    return layer


def check_stimulus_ids(stimulus_ids: Any, n: int) -> np.ndarray:
    """Unique integer (int64) or string (object array) ids, one per stimulus; default ``0..n-1``."""
    if stimulus_ids is None:
        return np.arange(n)
    if isinstance(stimulus_ids, str):
        raise LabelError("stimulus_ids must be a sequence of ids, not one string.")
    values = stimulus_ids if isinstance(stimulus_ids, np.ndarray) else np.asarray(list(stimulus_ids), dtype=object)
    if values.ndim != 1:
        raise LabelError(f"stimulus_ids must be one-dimensional, got shape {values.shape}.")
    if len(values) != n:
        raise LabelError(f"stimulus_ids has {len(values)} entries but the layers hold {n} stimuli.")
    if values.dtype.kind in "iu":
        ids = values.astype(np.int64)
    elif values.dtype.kind == "U" or all(isinstance(v, str) for v in values):
        ids = values.astype(str).astype(object)
    elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        ids = values.astype(np.int64)
    else:
        kinds = sorted({type(v).__name__ for v in values})
        raise LabelError(f"stimulus_ids must be all integers or all strings; got {', '.join(kinds)}.")
    dup = pd.Index(ids).duplicated()
    if dup.any():
        raise LabelError(f"stimulus_ids must be unique; {ids.tolist()[np.flatnonzero(dup)[0]]!r} is repeated.")
    return ids


class Activations(Mapping):
    """Activations of network layers for a set of stimuli.

    Parameters
    ----------
    layers : mapping of str to array-like
        Layer name -> activations ``(n_stimuli, ...)`` (any number of unit
        axes). Values may be numpy arrays, torch tensors, ``h5py.Dataset``
        objects (read on access, see Notes) or anything :func:`numpy.asarray`
        accepts; a loaded ``.npz`` file is such a mapping. Every layer must
        hold the same number of stimuli. The mapping order is kept (for
        extracted activations it is the order in which the layers ran, i.e.
        depth order).
    stimulus_ids : sequence of int or str, optional
        Unique id of each stimulus (e.g. image names or condition labels of
        the brain data they will be compared with); default ``0..n-1``.
    model : str, optional
        Description of the network (any other object is stored as its type name).
    metadata : dict, optional
        Extra JSON-serialisable information (reductions used, source, ...).

    Attributes
    ----------
    layer_names : list of str
        Layer names, in order.
    stimulus_ids : numpy.ndarray
        Stimulus ids (int64 or object array of str).
    model : str or None
    metadata : dict

    Notes
    -----
    ``act[layer]`` returns a read-only numpy array. Layers backed by an HDF5
    file (from :meth:`from_hdf5`, from ``extract_activations(..., out=...)``
    or given as ``h5py.Dataset``) are read from disk on *every* access; keep
    the result in a variable when it is used several times, or call
    :meth:`load` to bring all layers into memory.

    The container is a read-only :class:`~collections.abc.Mapping` of layer
    names to arrays, so ``dict(act)`` and ``numpy.savez(path, **act)`` work.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroenc.activationdata import Activations
    >>> act = Activations({"conv1": np.ones((4, 2, 3, 3)), "fc": np.zeros((4, 10))},
    ...                   stimulus_ids=["cat", "dog", "car", "cup"])
    >>> act.layer_names, act.n_stimuli
    (['conv1', 'fc'], 4)
    >>> act.flattened("conv1").shape
    (4, 18)
    >>> act.select(["car", "cat"]).stimulus_ids.tolist()
    ['car', 'cat']
    """

    def __init__(
        self,
        layers: Mapping[str, Any],
        stimulus_ids: Sequence[Any] | np.ndarray | None = None,
        *,
        model: Any = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(layers, Mapping):
            raise ShapeError(f"layers must be a mapping {{layer name: array}}, got {type(layers).__name__}.")
        if len(layers) == 0:
            raise EmptySelectionError("Activations need at least one layer.")
        self._layers: dict[str, np.ndarray | H5Layer] = {}
        n_stimuli: int | None = None
        first = None
        for name in layers:
            layer = _check_layer(name, layers[name])
            if n_stimuli is None:
                n_stimuli, first = layer.shape[0], name
            elif layer.shape[0] != n_stimuli:
                raise ShapeError(
                    f"layer {name!r} holds {layer.shape[0]} stimuli but layer {first!r} holds {n_stimuli}; "
                    "every layer needs one row per stimulus."
                )
            self._layers[name] = layer
        if n_stimuli == 0:
            raise ShapeError("The layers hold no stimulus (0 rows).")
        self.stimulus_ids = check_stimulus_ids(stimulus_ids, n_stimuli)
        self.model = model if model is None or isinstance(model, str) else type(model).__name__
        self.metadata = dict(metadata or {})

    # ------------------------------------------------------------------
    # mapping interface
    def __getitem__(self, layer: str) -> np.ndarray:
        """Activations of one layer, ``(n_stimuli, ...)``, as a read-only array."""
        if layer not in self._layers:
            check_names([layer], self._layers, "layer")
        value = self._layers[layer]
        arr = value.read() if isinstance(value, H5Layer) else value.view()
        arr.flags.writeable = False
        return arr

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __contains__(self, layer: object) -> bool:
        return layer in self._layers

    # Mapping's __eq__ would compare arrays elementwise into an ambiguous truth value.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    @property
    def layer_names(self) -> list[str]:
        """Layer names, in order."""
        return list(self._layers)

    @property
    def n_stimuli(self) -> int:
        """Number of stimuli (rows of every layer)."""
        return len(self.stimulus_ids)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each layer (including the stimulus axis), without reading lazy layers."""
        return {name: tuple(layer.shape) for name, layer in self._layers.items()}

    @property
    def is_lazy(self) -> bool:
        """Whether some layers are read from an HDF5 file on access."""
        return any(isinstance(layer, H5Layer) for layer in self._layers.values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name} {shape[1:]}" for name, shape in list(self.shapes.items())[:4])
        more = ", ..." if len(self) > 4 else ""
        where = ", on disk" if self.is_lazy else ""
        return f"<Activations | {len(self)} layer(s), {self.n_stimuli} stimuli{where}: {shown}{more}>"

    def flattened(self, layer: str) -> np.ndarray:
        """Activations of ``layer`` as a 2-D array ``(n_stimuli, n_units)`` (C order)."""
        arr = self[layer]
        return arr.reshape(arr.shape[0], -1)

    def load(self) -> Activations:
        """A copy with every layer in memory."""
        return self._new({name: self[name] for name in self._layers}, self.stimulus_ids)

    def _new(self, layers: dict[str, Any], stimulus_ids: np.ndarray) -> Activations:
        return Activations._from_checked(layers, stimulus_ids, self.model, self.metadata)

    @classmethod
    def _from_checked(
        cls, layers: dict[str, np.ndarray | H5Layer], stimulus_ids: np.ndarray, model: str | None, metadata: dict
    ) -> Activations:
        """A container of already validated layers and ids (skips the O(n) finiteness scan)."""
        new = cls.__new__(cls)
        new._layers = dict(layers)
        new.stimulus_ids = stimulus_ids
        new.model = model
        new.metadata = dict(metadata)
        return new

    # ------------------------------------------------------------------
    # stimulus selection and alignment
    def index_of(self, stimulus_ids: Any) -> np.ndarray:
        """Row positions of the given stimulus ids (repeats allowed).

        Raises
        ------
        UnknownNameError
            Naming the ids that are missing.

        Examples
        --------
        Trial-level design matrix for brain data with repeated conditions:

        >>> X = act.flattened("fc")[act.index_of(brain.conditions)]  # doctest: +SKIP
        """
        if isinstance(stimulus_ids, (str, int, np.integer)):
            stimulus_ids = [stimulus_ids]
        requested = pd.Index(list(stimulus_ids), dtype=object)
        if len(requested) == 0:
            raise EmptySelectionError("No stimulus id requested.")
        pos = pd.Index(self.stimulus_ids, dtype=object).get_indexer(requested)
        missing = requested[pos < 0]
        if len(missing):
            missing = list(dict.fromkeys(missing))
            shown = ", ".join(map(repr, missing[:_MAX_LISTED])) + (", ..." if len(missing) > _MAX_LISTED else "")
            hint = ""
            have = "integers" if self.stimulus_ids.dtype.kind == "i" else "strings"
            asked = {type(m).__name__ for m in missing}
            if have == "integers" and asked == {"str"} or have == "strings" and "str" not in asked:
                hint = f" The stimulus ids are {have} but the requested ids are of type {', '.join(sorted(asked))}."
            ids = self.stimulus_ids
            avail = ", ".join(map(repr, ids[:_MAX_LISTED].tolist())) + (", ..." if len(ids) > _MAX_LISTED else "")
            raise UnknownNameError(
                f"{len(missing)} stimulus id(s) not in the activations: {shown}.{hint} Available: {avail}."
            )
        return pos.astype(np.int64)

    def select(self, stimulus_ids: Any) -> Activations:
        """The given stimuli, in the given order (read into memory).

        Parameters
        ----------
        stimulus_ids : sequence
            Ids to keep; each at most once.

        Returns
        -------
        Activations
        """
        pos = self.index_of(stimulus_ids)
        if len(np.unique(pos)) != len(pos):
            raise LabelError("select takes each stimulus id at most once; use index_of for repeated rows.")
        layers = {
            name: layer.read(pos) if isinstance(layer, H5Layer) else layer[pos] for name, layer in self._layers.items()
        }
        return self._new(layers, self.stimulus_ids[pos])

    def align(self, brain: Any, by: str = "condition") -> Activations:
        """Activations ordered like the conditions of brain data.

        Parameters
        ----------
        brain : BrainData, pandas.DataFrame or sequence
            Brain data (its ``obs[by]`` labels), a table with a ``by`` column,
            or the labels themselves. Labels are matched to the stimulus ids
            by equality (``"1"`` does not match ``1``).
        by : str
            Column holding the labels.

        Returns
        -------
        Activations
            If the labels are unique (e.g. condition averages), one row per
            label in their order. If labels repeat (single trials), one row
            per distinct label in sorted order, i.e. the order of
            ``brain.average(by)``. For one row per trial use
            ``act.index_of(labels)``.

        Raises
        ------
        UnknownNameError
            If some labels have no stimulus id (they are listed).

        Examples
        --------
        >>> aligned = act.align(brain.average("condition"))  # doctest: +SKIP
        >>> aligned.stimulus_ids  # same order as the averaged brain data  # doctest: +SKIP
        """
        if hasattr(brain, "obs") and isinstance(brain.obs, pd.DataFrame):
            table = brain.obs
        elif isinstance(brain, pd.DataFrame):
            table = brain
        else:
            table = None
        if table is not None:
            check_names([by], table.columns, "obs column")
            labels = table[by]
        else:
            if isinstance(brain, str):
                raise LabelError("align takes brain data or a sequence of labels, not one string.")
            labels = pd.Series(list(brain))
        if len(labels) == 0:
            raise EmptySelectionError("No label to align to.")
        if labels.isna().any():
            raise LabelError(f"The {by!r} labels contain missing values; every observation needs a label.")
        if labels.is_unique:
            order = labels.tolist()
        else:
            # The grouping BrainData.average uses, so the rows line up with its output.
            order = labels.groupby(labels, sort=True, observed=True).size().index.tolist()
        return self.select(order)

    # ------------------------------------------------------------------
    # HDF5 store
    def to_hdf5(
        self,
        path: str | os.PathLike,
        key: str = "activations",
        *,
        overwrite: bool = False,
        compression: str | None = "lzf",
    ) -> None:
        """Store in an HDF5 file under ``key``, atomically (one dataset per layer).

        The file is changed all at once: a crash during the write leaves the
        previous file (or none) in place. Other entries of the file are kept.
        Layers held in another HDF5 file are copied by HDF5 without passing
        through memory (they keep their storage layout).

        Parameters
        ----------
        path : path-like
            HDF5 file; created if missing.
        key : str
            Group of the entry.
        overwrite : bool
            Replace an existing entry ``key``.
        compression : {"lzf", "gzip", None}
            Filter of in-memory layers.
        """
        import h5py

        check_choice(compression, COMPRESSIONS, "compression")
        with atomic_h5(path, replace=key if overwrite else None) as f:
            prepare_key(f, key, overwrite)
            g = f.create_group(key)
            write_header(g, self.layer_names, self.stimulus_ids, self.model, self.metadata)
            layers = g.create_group("layers")
            for name, layer in self._layers.items():
                if isinstance(layer, H5Layer):
                    with h5py.File(layer.path, "r") as src:
                        src.copy(src[layer.name], layers, name=h5_layer_name(name))
                else:
                    write_array(layers, h5_layer_name(name), layer, compression)

    @classmethod
    def from_hdf5(
        cls,
        path: str | os.PathLike,
        key: str = "activations",
        layers: str | Sequence[str] | None = None,
        *,
        lazy: bool = True,
    ) -> Activations:
        """Read activations from an HDF5 file.

        Reads entries written by :meth:`to_hdf5` or by
        ``extract_activations(..., out=path)``, and plain HDF5 groups written
        by other tools: then every dataset directly in the group is a layer
        (in the group's iteration order: alphabetical unless the group tracks
        creation order) and a dataset named ``stimulus_ids``, if present,
        holds the ids.

        Parameters
        ----------
        path : path-like
            HDF5 file.
        key : str
            Group to read (``"/"`` for the root of a plain file).
        layers : str or sequence of str, optional
            Layer names or globs (:func:`glob_matcher`) to read; default all.
        lazy : bool
            Keep the layers on disk and read each on access (default), or
            read them now.

        Returns
        -------
        Activations

        Examples
        --------
        >>> act = Activations.from_hdf5("acts.h5", layers="features.*")  # doctest: +SKIP
        >>> X = act.flattened("features.4")  # reads this layer only  # doctest: +SKIP
        """
        import h5py

        with open_h5_read(path) as f:
            if key.strip("/") == "":
                group = f
            elif key not in f or not isinstance(f[key], h5py.Group):
                listed = ", ".join(repr(k) for k in list_entries(f, STORE_KIND)) or "none"
                raise StoreError(f"No group {key!r} in {f.filename}. Activations entries: {listed}.")
            else:
                group = f[key]
            if group.attrs.get("neuroenc_type") == STORE_KIND:
                names, datasets, ids, model, metadata = _read_entry(group, key)
            elif "neuroenc_type" in group.attrs:
                raise StoreError(f"Entry {key!r} in {f.filename} is a {group.attrs['neuroenc_type']}, not Activations.")
            else:
                names, datasets, ids, model, metadata = _read_plain_group(group, key)
            if layers is not None:
                names = match_names(layers, names, f"layer in {key!r}")
            values = {name: H5Layer.from_dataset(datasets[name]) if lazy else datasets[name][()] for name in names}
            return cls(values, ids, model=model, metadata=metadata)


def write_header(group: Any, layer_names: list[str], stimulus_ids: np.ndarray, model: Any, metadata: dict) -> None:
    """Attributes and stimulus ids of an Activations entry."""
    group.attrs["neuroenc_type"] = STORE_KIND
    group.attrs["format_version"] = FORMAT_VERSION
    group.attrs["neuroenc_version"] = __version__
    group.attrs["layer_names"] = json.dumps(layer_names)
    group.attrs["n_stimuli"] = len(stimulus_ids)
    group.attrs["model"] = json.dumps(model)
    group.attrs["metadata"] = json.dumps(metadata, default=str)
    if stimulus_ids.dtype.kind == "O":
        group.create_dataset("stimulus_ids", data=stimulus_ids, dtype=STRING_DTYPE)
    else:
        group.create_dataset("stimulus_ids", data=stimulus_ids)


def _read_ids(ds: Any) -> np.ndarray:
    if ds.dtype.kind in "OS":
        return np.asarray(ds.asstr()[()], dtype=object)
    return ds[()]


def _read_entry(group: Any, key: str) -> tuple:
    version = int(group.attrs.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise StoreError(
            f"Entry {key!r} has format version {version}; this neuroenc reads up to {FORMAT_VERSION}. Upgrade neuroenc."
        )
    n_stimuli = int(group.attrs["n_stimuli"])
    if "n_done" in group:  # written by a streaming extraction
        n_done = int(group["n_done"][0])
        if n_done < n_stimuli:
            raise StoreError(
                f"The extraction into {group.file.filename} is incomplete ({n_done} of {n_stimuli} stimuli "
                "written); run extract_activations again with the same arguments to resume it."
            )
    names = json.loads(group.attrs["layer_names"])
    datasets = {name: group["layers"][h5_layer_name(name)] for name in names}
    return (
        names,
        datasets,
        _read_ids(group["stimulus_ids"]),
        json.loads(group.attrs["model"]),
        json.loads(group.attrs["metadata"]),
    )


def _read_plain_group(group: Any, key: str) -> tuple:
    import h5py

    datasets = {
        name: obj
        for name, obj in group.items()
        if isinstance(obj, h5py.Dataset) and name != "stimulus_ids" and obj.ndim >= 1 and obj.dtype.kind in "biuf"
    }
    if not datasets:
        raise StoreError(f"Group {key!r} of {group.file.filename} holds no numeric dataset to read as a layer.")
    ids = _read_ids(group["stimulus_ids"]) if "stimulus_ids" in group else None
    return list(datasets), datasets, ids, None, {"source": f"{group.file.filename}:{group.name}"}
