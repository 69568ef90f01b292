"""Low-level HDF5 helpers: atomic writes, locking and DataFrame encoding.

Every neuroenc object that is stored in HDF5 goes through :func:`atomic_h5`
so that a crash or a kill while writing never leaves a damaged file: the
new content is written to a temporary file in the same folder and renamed
over the target only once it is complete and flushed to disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from neuroenc.errors import CorruptFileError, MissingFileError, StoreError

try:  # POSIX advisory locks; on other systems writers are not serialised.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

STRING_DTYPE = h5py.string_dtype("utf-8")


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``<path>.lock`` for the block (one hold of a :class:`HeldLock`)."""
    lock = HeldLock(path)
    try:
        with lock():
            yield
    finally:
        lock.close()


class HeldLock:
    """An exclusive advisory lock on ``<path>.lock``, its file kept open for many short holds.

    Opening the lock file for every hold costs as much as the write it guards
    (a results store appends once per fold). The lock is re-entrant within a
    thread and excludes the other threads of the process as well (``flock``
    alone would not: threads share the open file). After a fork or unpickling
    the file is opened afresh.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self._threads = threading.RLock()
        self._fd: int | None = None
        self._pid: int | None = None
        self._depth = 0

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def __call__(self) -> HeldLock:
        """The lock as a context manager: ``with lock(): ...``."""
        return self

    def __enter__(self) -> None:
        # __enter__/__exit__ rather than a generator: this runs twice per appended record.
        if self._pid is not None and self._pid != os.getpid():
            # A forked child copies the parent's state, held or not, but not its lock: start afresh.
            self.__init__(self.path)
        self._threads.acquire()
        if self._depth or fcntl is None:  # a nested hold (or Windows, without fcntl)
            self._depth += 1
            return
        try:
            if self._fd is None:
                self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
                self._pid = os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        self._depth = 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def __del__(self) -> None:
        # a store dropped without close() must not leave its lock file open
        if getattr(self, "_fd", None) is not None and self._pid == os.getpid():
            os.close(self._fd)

    def close(self) -> None:
        """Close the lock file (the next hold reopens it)."""
        with self._threads:
            if self._fd is not None and self._pid == os.getpid() and self._depth == 0:
                os.close(self._fd)
                self._fd = None


def _remove_stale_temps(path: Path) -> None:
    """Delete temporary files left by writers that were killed."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            pid = int(tmp.name.split(".")[-3])
        except (ValueError, IndexError):
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass


@contextlib.contextmanager
def replaced_atomically(path: Path, durable: bool = True) -> Iterator[Path]:
    """A temporary path next to ``path`` whose file replaces ``path`` when the block succeeds.

    The rename is atomic, so ``path`` holds either the old or the whole new
    content whenever the process dies; if the block raises, the temporary file
    is deleted and ``path`` is untouched. Temporary files of killed writers
    are removed first. ``durable``: the new file is flushed to disk before the
    rename and the rename after it, so that a power cut cannot leave an empty
    file either (a killed process cannot: the operating system keeps what
    was written).
    """
    _remove_stale_temps(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        if durable:
            _fsync_path(tmp)
        os.replace(tmp, path)
        if durable:
            _fsync_path(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _copy_all_but(src: h5py.Group, dst: h5py.Group, skip: list[str]) -> None:
    """Copy ``src`` into ``dst`` (attributes too) leaving out the path ``skip``."""
    for name, value in src.attrs.items():
        dst.attrs[name] = value
    for name in src:
        if name != skip[0]:
            src.copy(src[name], dst, name=name)
        elif len(skip) > 1:
            _copy_all_but(src[name], dst.create_group(name), skip[1:])


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike, replace: str | None = None) -> Iterator[h5py.File]:
    """Open ``path`` for modification so that the change lands all at once.

    The existing file (if any) is copied to a temporary file next to it, the
    block writes to that copy, and the copy replaces ``path`` by an atomic
    rename after it has been flushed. If the block raises, ``path`` is left
    untouched. Concurrent writers in other processes are serialised with a
    lock file.

    Parameters
    ----------
    path : path-like
        The HDF5 file.
    replace : str, optional
        An entry the block will write again. The copy is then rebuilt without
        it instead of copied byte for byte, because HDF5 does not reclaim the
        space of deleted objects and files would grow with every overwrite.
    """
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise MissingFileError(f"Folder does not exist: {path.parent}")
    with file_lock(path), replaced_atomically(path) as tmp:
        existed = path.exists()
        if existed:
            check_hdf5(path)
            _prepare_copy(path, tmp, replace)
        try:
            f = h5py.File(tmp, "a")
        except OSError as exc:
            # A valid signature does not mean a readable file (e.g. a truncated copy).
            if existed:
                raise CorruptFileError(f"Cannot open {path} as HDF5 to add to it: {exc}") from exc
            raise
        with f:
            yield f


def _prepare_copy(path: Path, tmp: Path, replace: str | None) -> None:
    """Put the content of ``path`` into ``tmp``, without entry ``replace`` if it exists."""
    if replace is not None:
        try:
            src = h5py.File(path, "r")
        except OSError as exc:
            raise CorruptFileError(f"Cannot open {path} as HDF5 to add to it: {exc}") from exc
        with src:
            key = replace.strip("/")
            if key in src:
                check_replaceable(src, key)
                with h5py.File(tmp, "w") as dst:
                    _copy_all_but(src, dst, key.split("/"))
                return
    shutil.copyfile(path, tmp)


def check_hdf5(path: Path) -> None:
    """Raise a clear error if ``path`` is missing or not a readable HDF5 file."""
    if not path.exists():
        raise MissingFileError(f"HDF5 file not found: {path}")
    if not h5py.is_hdf5(path):
        raise CorruptFileError(f"{path} is not an HDF5 file (or it is damaged).")


@contextlib.contextmanager
def open_h5_read(source: Any) -> Iterator[h5py.File]:
    """Open a path or a binary file object for reading with clear errors."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        check_hdf5(path)
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise CorruptFileError(f"Cannot open {path} as HDF5: {exc}") from exc
    else:
        try:
            f = h5py.File(source, "r")
        except OSError as exc:
            raise CorruptFileError(f"Cannot open file object as HDF5: {exc}") from exc
    with f:
        yield f


def require_group(f: h5py.File, key: str, kind: str) -> h5py.Group:
    """Return the group ``key`` holding a ``kind`` object, with clear errors."""
    if key not in f:
        available = list_entries(f, kind)
        listed = ", ".join(repr(k) for k in available) or "none"
        raise StoreError(f"No entry {key!r} in {f.filename}. {kind} entries: {listed}.")
    group = f[key]
    if not isinstance(group, h5py.Group) or group.attrs.get("neuroenc_type") != kind:
        raise StoreError(f"Entry {key!r} in {f.filename} is not a {kind}.")
    return group


def list_entries(f: h5py.File, kind: str | None = None) -> list[str]:
    """Names of the neuroenc entries (optionally of one kind) in an open file."""
    found: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group) and "neuroenc_type" in obj.attrs:
            if kind is None or obj.attrs["neuroenc_type"] == kind:
                found.append(name)

    f.visititems(visit)
    return found


def prepare_key(f: h5py.File, key: str, overwrite: bool) -> None:
    """Make room for a new entry ``key``, refusing to replace one unless asked."""
    if not key or key.startswith("/") and len(key) == 1:
        raise StoreError("The HDF5 key must be a non-empty group name.")
    parts = key.strip("/").split("/")
    for depth in range(1, len(parts)):
        parent = "/".join(parts[:depth])
        if parent in f and "neuroenc_type" in f[parent].attrs:
            raise StoreError(f"Cannot store {key!r} inside the entry {parent!r} of {f.filename}.")
    if key in f:
        if not overwrite:
            raise StoreError(f"Entry {key!r} already exists in {f.filename}; pass overwrite=True to replace it.")
        check_replaceable(f, key)
        del f[key]


def check_replaceable(f: h5py.File, key: str) -> None:
    """Refuse to replace ``key`` unless it is one neuroenc entry."""
    obj = f[key]
    if "neuroenc_type" not in obj.attrs:
        # overwrite replaces one entry; deleting a plain group would drop every entry nested in it.
        nested = list_entries(obj) if isinstance(obj, h5py.Group) else []
        inner = ", ".join(repr(f"{key.strip('/')}/{k}") for k in nested) or "none"
        raise StoreError(f"{key!r} in {f.filename} is not an entry, so it is not replaced (entries inside: {inner}).")


# --------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------
COMPRESSIONS = ("lzf", "gzip", None)


def write_array(
    group: h5py.Group, name: str, arr: np.ndarray, compression: str | None = "lzf", chunk_bytes: int = 1 << 19
):
    """Write an array chunked along the first axis (chunks of about ``chunk_bytes``), compressed.

    ``"lzf"`` (h5py's built-in filter) writes several times faster than gzip
    and compresses quantised recordings well; ``"gzip"`` is readable by every
    HDF5 tool (MATLAB, h5dump...); None stores raw chunks.
    """
    arr = np.ascontiguousarray(arr)
    if arr.ndim == 0 or arr.size == 0:
        return group.create_dataset(name, data=arr)
    row_bytes = max(1, arr[0:1].nbytes)
    rows = int(max(1, min(arr.shape[0], chunk_bytes // row_bytes)))
    chunks = (rows,) + arr.shape[1:]
    options = {"compression": "gzip", "compression_opts": 4, "shuffle": True} if compression == "gzip" else {}
    if compression == "lzf":
        options = {"compression": "lzf"}
    return group.create_dataset(name, data=arr, chunks=chunks, **options)


def read_rows(ds: h5py.Dataset, rows: np.ndarray | None) -> np.ndarray:
    """Read ``ds[rows]`` touching only the chunks that hold those rows.

    Consecutive indices are read as one slice each, which is much faster
    than h5py's point-wise fancy indexing.
    """
    if rows is None:
        return ds[()]
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty((len(rows),) + ds.shape[1:], dtype=ds.dtype)
    if len(rows) == 0:
        return out
    order = np.argsort(rows, kind="stable")
    srt = rows[order]
    breaks = np.flatnonzero(np.diff(srt) != 1) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [len(srt)]))
    buf = np.empty_like(out)
    for a, b in zip(starts, stops):
        buf[a:b] = ds[srt[a] : srt[b - 1] + 1]
    out[order] = buf
    return out


# --------------------------------------------------------------------------
# Tables: one dataset per column (numeric columns of one dtype share a 2-D dataset); each
# column's encoding and dtype (JSON in the group attribute "encodings") make the round trip exact.
# --------------------------------------------------------------------------
# Codes of the missing-value markers of object string columns (None is the default).
_OBJECT_NA = {"none": 0, "nan": 1, "na": 2}


def _write_strings(group: h5py.Group, name: str, values: np.ndarray, markers: bool, label: str) -> h5py.Dataset:
    """Write an object array of str and missing values; ``markers``: keep which missing marker each was."""
    missing = np.asarray(pd.isna(values), dtype=bool)
    data = np.array(["" if m else str(v) for v, m in zip(values, missing)], dtype=object)
    if any("\x00" in v for v in data):
        raise StoreError(f"Column {label!r} has a string with a NUL character, which HDF5 strings cannot hold.")
    ds = group.create_dataset(name, data=data, dtype=STRING_DTYPE)
    if missing.any():
        group.create_dataset(name + "__mask", data=missing)
        if markers:
            # Object columns may mark missing values as None, NaN or pd.NA; keep which one.
            codes = np.array([_OBJECT_NA[_missing_kind(v)] for v, m in zip(values, missing) if m], dtype=np.uint8)
            if codes.any():
                group.create_dataset(name + "__na", data=codes)
    return ds


def _is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))


def _missing_kind(v: Any) -> str:
    return "none" if v is None else "na" if v is pd.NA else "nan"


def _write_column(
    group: h5py.Group, name: str, values: pd.Series | pd.Index, label: str, encodings: dict[str, dict]
) -> None:
    """Write one column as dataset ``name``; how to read it back goes into ``encodings[name]``."""
    if not isinstance(values, pd.Series):
        values = pd.Series(values)
    dtype = values.dtype
    encoding: dict[str, Any] = {}
    if isinstance(dtype, pd.CategoricalDtype):
        group.create_dataset(name, data=values.cat.codes.to_numpy())
        _write_column(group, name + "__categories", pd.Index(dtype.categories), label, encodings)
        encoding.update(kind="category", ordered=bool(dtype.ordered))
    elif isinstance(dtype, np.dtype) and dtype.kind in "biufc":
        group.create_dataset(name, data=values.to_numpy())
        encoding["kind"] = "numpy"
    elif isinstance(dtype, np.dtype) and dtype.kind in "mM":
        group.create_dataset(name, data=values.to_numpy().view(np.int64))
        encoding["kind"] = "datetime"
    elif isinstance(dtype, pd.DatetimeTZDtype):
        # Keep the column's own unit: converting to ns overflows outside 1677-2262.
        utc = values.dt.tz_convert("UTC").dt.tz_localize(None)
        group.create_dataset(name, data=utc.to_numpy().view(np.int64))
        encoding.update(kind="datetime_tz", unit=dtype.unit)
    elif pd.api.types.is_string_dtype(dtype) or (isinstance(dtype, np.dtype) and dtype.kind == "O"):
        objects = values.to_numpy(dtype=object)  # iterating a numpy array, not the Series: 10x faster
        bad = [v for v in objects if not _is_missing(v) and not isinstance(v, str)]
        if bad:
            raise StoreError(
                f"Column {label!r} mixes strings with {type(bad[0]).__name__} values; "
                "convert it to one type before storing."
            )
        _write_strings(group, name, objects, isinstance(dtype, np.dtype) and dtype.kind == "O", label)
        encoding["kind"] = "string"
    elif hasattr(dtype, "numpy_dtype"):  # pandas nullable Int64/Float64/boolean
        missing = values.isna().to_numpy()
        filled = values.to_numpy(dtype=dtype.numpy_dtype, na_value=0)
        group.create_dataset(name, data=filled)
        group.create_dataset(name + "__mask", data=missing)
        encoding["kind"] = "masked"
    else:
        raise StoreError(f"Column {label!r} has dtype {dtype}, which cannot be stored in HDF5.")
    encoding["dtype"] = str(dtype)
    encodings[name] = encoding


def _read_column(
    group: h5py.Group, name: str, encodings: Mapping[str, Any] | None, blocks: dict[str, np.ndarray]
) -> pd.Series:
    # files written before the encodings moved to one group attribute keep them on each dataset
    encoding = group[name].attrs if encodings is None else encodings[name]
    kind = encoding["kind"]
    dtype_str = encoding["dtype"]
    if "block" in encoding:  # one column of a 2-D dataset holding the numeric columns of one dtype
        if encoding["block"] not in blocks:
            blocks[encoding["block"]] = group[encoding["block"]][()]
        column = blocks[encoding["block"]][:, encoding["at"]]
        return pd.Series(np.ascontiguousarray(column), dtype=np.dtype(dtype_str))
    ds = group[name]
    mask = group[name + "__mask"][()] if (name + "__mask") in group else None
    if kind == "numpy":
        return pd.Series(ds[()], dtype=np.dtype(dtype_str))
    if kind == "datetime":
        return pd.Series(ds[()].view(np.dtype(dtype_str)))
    if kind == "datetime_tz":
        dtype = pd.api.types.pandas_dtype(dtype_str)
        unit = encoding.get("unit", "ns")  # files without the attribute hold nanoseconds
        utc = pd.Series(ds[()].view(f"datetime64[{unit}]")).dt.tz_localize("UTC")
        return utc.dt.tz_convert(dtype.tz).astype(dtype)
    if kind == "category":
        cats = _read_column(group, name + "__categories", encodings, blocks)
        cat = pd.Categorical.from_codes(ds[()], categories=pd.Index(cats), ordered=bool(encoding["ordered"]))
        return pd.Series(cat)
    if kind == "string":
        values = np.asarray(ds.asstr()[()], dtype=object)
        if dtype_str == "object":
            if mask is not None:
                markers = np.array([None, np.nan, pd.NA], dtype=object)
                codes = group[name + "__na"][()] if (name + "__na") in group else 0
                values[mask] = markers[codes]
            return pd.Series(values, dtype=object)
        dtype = pd.api.types.pandas_dtype(dtype_str)
        out = pd.Series(values, dtype=dtype)
        if mask is not None:
            out[mask] = dtype.na_value if hasattr(dtype, "na_value") else None
        return out
    if kind == "masked":
        dtype = pd.api.types.pandas_dtype(dtype_str)
        out = pd.array(ds[()], dtype=dtype)
        if mask is not None:
            out[mask] = pd.NA
        return pd.Series(out)
    raise CorruptFileError(f"Unknown column encoding {kind!r} in {group.name}/{name}.")


def write_frame(parent: h5py.Group, name: str, df: pd.DataFrame) -> h5py.Group:
    """Store a DataFrame (columns of any common dtype, and its index) in a group."""
    group = parent.create_group(name)
    labels = []
    # One attribute for all columns' encodings: two attributes per dataset cost more than the data.
    encodings: dict[str, dict] = {}
    numeric: dict[np.dtype, list[tuple[int, pd.Series]]] = {}
    for i, (col, values) in enumerate(df.items()):  # items(): a tenth of the cost of iloc per column
        if not isinstance(col, (str, int, float)):
            raise StoreError(f"Column label {col!r} is not a string or number.")
        labels.append(col)
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "biufc":
            numeric.setdefault(values.dtype, []).append((i, values))
        else:
            _write_column(group, f"c{i}", values, str(col), encodings)
    # Numeric columns of one dtype share a 2-D dataset: creating a dataset costs more than a
    # results table's data, and a table has a dozen such columns.
    for j, (dtype, members) in enumerate(numeric.items()):
        if len(members) == 1:
            i, values = members[0]
            _write_column(group, f"c{i}", values, str(labels[i]), encodings)
            continue
        block = np.empty((len(df), len(members)), dtype=dtype)
        for k, (i, values) in enumerate(members):
            block[:, k] = values.to_numpy()
            encodings[f"c{i}"] = {"kind": "numpy", "dtype": str(dtype), "block": f"block{j}", "at": k}
        group.create_dataset(f"block{j}", data=block)
    group.attrs["columns"] = json.dumps(labels)
    group.attrs["n_rows"] = len(df)
    if not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1):
        _write_column(group, "index", df.index.to_series(), "index", encodings)
        group.attrs["index_name"] = json.dumps(df.index.name)
    group.attrs["encodings"] = json.dumps(encodings)
    return group


def read_frame(parent: h5py.Group, name: str) -> pd.DataFrame:
    """Read a DataFrame written by :func:`write_frame`."""
    group = parent[name]
    labels = json.loads(group.attrs["columns"])
    n_rows = int(group.attrs["n_rows"])
    encodings = json.loads(group.attrs["encodings"]) if "encodings" in group.attrs else None
    blocks: dict[str, np.ndarray] = {}
    cols = {i: _read_column(group, f"c{i}", encodings, blocks) for i in range(len(labels))}
    df = pd.DataFrame({i: s.reset_index(drop=True) for i, s in cols.items()}, index=pd.RangeIndex(n_rows))
    df.columns = labels
    if "index" in group:
        idx = pd.Index(_read_column(group, "index", encodings, blocks))
        idx.name = json.loads(group.attrs["index_name"])
        df.index = idx
    return df
