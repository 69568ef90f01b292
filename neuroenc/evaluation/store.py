"""Crash-safe, parallel-safe HDF5 store of per-fold evaluation results.

Layout
------
A store at ``results.h5`` is made of

* ``results.h5``: an HDF5 file holding the compacted table (group
  ``records``, HDF5 datasets of its columns written by
  :func:`neuroenc._h5.write_frame`, so every column keeps its dtype) and, in
  the root attribute ``consumed``, how far each journal file has been merged.
  It is only ever replaced whole (temporary file, ``fsync``, atomic rename),
  so it always opens, whatever moment a process is killed.
* ``results.h5.journal/<pid>-<uuid>.jsonl``: one append-only journal per
  writing process. :meth:`ResultsStore.add` appends one line per record
  (``<crc32> <json>``), written by a single ``write`` call and ``fsync``-ed
  before it returns, so a record is on disk as soon as its fold finishes. A
  line cut short by a kill or failing its checksum is ignored.
* ``results.h5.lock``: the ``fcntl`` lock (:class:`neuroenc._h5.HeldLock`)
  that serialises appends, merges and reads between processes.

Why a journal and not in-place HDF5 appends: HDF5 updates its metadata
(B-trees, heaps, superblock) in several writes, so a process killed while
resizing a dataset can leave a file that no longer opens. An append-only
text journal cannot be damaged that way: the worst a kill does is leave a
partial last line. :meth:`ResultsStore.compact` merges the journals into the
HDF5 file (atomically, recording the merged byte offsets inside the new file,
so a kill between the rename and the deletion of the journals never counts a
record twice). It runs when a store is closed, every ``compact_every`` records
of one writer, on :meth:`ResultsStore.remove` and on ``overwrite=True``.
Readers see the HDF5 table plus every journal line not yet merged.

Schema
------
One record per (dataset, subject, session, pipeline, digest, fold) with the
values score, time, n_samples, n_channels, evaluation, and any extra scalar
columns (str, float, int, bool or None). Columns may appear at any time:
records without a column read as missing there. A second record with the
same key replaces the first (the latest write wins), so keys are never
duplicated.
"""

from __future__ import annotations

import functools
import hashlib
import json
import numbers
import os
import re
import time
import uuid
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from neuroenc._h5 import HeldLock, _fsync_path, check_hdf5, read_frame, replaced_atomically, write_frame
from neuroenc.errors import CorruptFileError, DataError, StoreError
from neuroenc.validation import check_names

__all__ = ["KEY_COLUMNS", "VALUE_COLUMNS", "ResultsStore", "pipeline_digest"]

KEY_COLUMNS = ("dataset", "subject", "session", "pipeline", "digest", "fold")
VALUE_COLUMNS = ("score", "time", "n_samples", "n_channels", "evaluation")
# pandas >= 3 has a string dtype ("str", NaN for missing); earlier versions keep text in object columns.
_STR: Any = "str" if int(pd.__version__.split(".")[0]) >= 3 else object
_CORE_DTYPES = {
    "dataset": _STR,
    "subject": np.int64,
    "session": _STR,
    "pipeline": _STR,
    "digest": _STR,
    "fold": np.int64,
    "score": np.float64,
    "time": np.float64,
    "n_samples": np.int64,
    "n_channels": np.int64,
    "evaluation": _STR,
}
_WRITTEN = "_written"  # time of the write in ns: the latest record of a key wins
_STORE_TYPE = "results_store"
_FORMAT_VERSION = 1


# --------------------------------------------------------------------------
# Pipeline digest
# --------------------------------------------------------------------------
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _describe(obj: Any, depth: int = 0) -> str:
    """A text that is equal for equal configurations, in any process."""
    if depth > 50:
        raise DataError("pipeline_digest: the pipeline is nested too deeply (or refers to itself).")
    again = functools.partial(_describe, depth=depth + 1)
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return f"{type(obj).__name__}:{obj!r}"
    if isinstance(obj, np.generic):
        return f"{obj.dtype}:{obj.item()!r}"
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            return f"ndarray[{obj.shape}]({', '.join(again(v) for v in obj.ravel())})"
        data = hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()
        return f"ndarray[{obj.dtype},{obj.shape}]:{data}"
    if isinstance(obj, (list, tuple)):
        return f"{type(obj).__name__}[{', '.join(again(v) for v in obj)}]"
    if isinstance(obj, Mapping):
        items = sorted((again(k), again(v)) for k, v in obj.items())
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if isinstance(obj, (set, frozenset)):
        return "{" + ", ".join(sorted(again(v) for v in obj)) + "}"
    if isinstance(obj, type):
        return f"class:{_qualname(obj)}"
    if hasattr(obj, "get_params"):
        params = obj.get_params(deep=False)  # nested estimators are described recursively
        inner = ", ".join(f"{k}={again(params[k])}" for k in sorted(params))
        return f"{_qualname(type(obj))}({inner})"
    if isinstance(obj, functools.partial):
        return f"partial({again(obj.func)}, {again(obj.args)}, {again(obj.keywords)})"
    code = getattr(obj, "__code__", None)
    if code is not None:
        # Lambdas and local functions share a name; their bytecode tells them apart.
        body = hashlib.sha256(code.co_code + repr(code.co_consts).encode()).hexdigest()[:16]
        return f"function:{_qualname(obj)}:{body}"
    if callable(obj) and hasattr(obj, "__qualname__"):
        return f"callable:{_qualname(obj)}"
    return f"{_qualname(type(obj))}:{_ADDRESS.sub('', repr(obj))}"


def pipeline_digest(pipeline: Any) -> str:
    """Stable hash of a pipeline's configuration, like MOABB's ``get_digest``.

    The pipeline is described recursively: scikit-learn style estimators by
    their qualified class name and ``get_params(deep=False)`` (nested
    estimators, pipeline steps and arrays included), functions by qualified
    name and bytecode. Memory addresses never enter the hash, so the digest is
    the same in every process and every run for an equal configuration, and
    changes when any parameter changes.

    Parameters
    ----------
    pipeline : object
        An estimator, a :class:`sklearn.pipeline.Pipeline`, a callable
        analysis or any value.

    Returns
    -------
    str
        32 hexadecimal characters.
    """
    return hashlib.sha256(_describe(pipeline).encode("utf-8")).hexdigest()[:32]


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------
def _scalar(value: Any) -> Any:
    """A numpy scalar as the Python scalar JSON can write."""
    return value.item() if isinstance(value, np.generic) else value


# The exact-type tests first: the abstract-class checks cost most of an append.
def _as_int(record: Mapping, name: str, minimum: int | None = None) -> int:
    value = record[name]
    if type(value) is int and (minimum is None or value >= minimum):
        return value
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DataError(f"Result column {name!r} must be an integer, got {value!r}.")
    if minimum is not None and value < minimum:
        raise DataError(f"Result column {name!r} must be >= {minimum}, got {value!r}.")
    return int(value)


def _as_float(record: Mapping, name: str) -> float:
    value = record[name]
    if type(value) is float:
        return value
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DataError(f"Result column {name!r} must be a real number, got {value!r}.")
    return float(value)


def _as_str(record: Mapping, name: str) -> str:
    value = record[name]
    if type(value) is str and value:
        return value
    value = _scalar(value)
    if not isinstance(value, str) or not value:
        raise DataError(f"Result column {name!r} must be a non-empty string, got {value!r}.")
    return value


def _as_subject(value: Any) -> int | str:
    if (type(value) is int or type(value) is str) and value != "":
        return value
    value = _scalar(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value:
        return value
    raise DataError(f"Result column 'subject' must be an integer or a non-empty string, got {value!r}.")


def _as_session(value: Any) -> str:
    # MOABB names sessions with strings ("0", "session_T"); integers are accepted as their text.
    if type(value) is str and value:
        return value
    value = _scalar(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value
    raise DataError(f"Result column 'session' must be a string, got {value!r}.")


_PLAIN = (str, int, float, bool)


def _check_record(record: Any) -> dict[str, Any]:
    """Validate one result and return it with plain Python scalars."""
    if not isinstance(record, Mapping):
        raise DataError(f"A result record must be a dict, got {type(record).__name__}.")
    missing = [c for c in (*KEY_COLUMNS, *VALUE_COLUMNS) if c not in record]
    if missing:
        raise DataError(
            f"Result record lacks the column(s) {', '.join(map(repr, missing))}; "
            f"every record needs {', '.join(KEY_COLUMNS + VALUE_COLUMNS)}."
        )
    time_ = _as_float(record, "time")
    if not np.isfinite(time_) or time_ < 0:
        raise DataError(f"Result column 'time' must be finite and >= 0, got {record['time']!r}.")
    out: dict[str, Any] = {
        "dataset": _as_str(record, "dataset"),
        "subject": _as_subject(record["subject"]),
        "session": _as_session(record["session"]),
        "pipeline": _as_str(record, "pipeline"),
        "digest": _as_str(record, "digest"),
        "fold": _as_int(record, "fold"),
        "score": _as_float(record, "score"),  # NaN allowed: a failed fold scored as error_score=nan
        "time": time_,
        "n_samples": _as_int(record, "n_samples", 0),
        "n_channels": _as_int(record, "n_channels", 0),
        "evaluation": _as_str(record, "evaluation"),
    }
    for name, value in record.items():
        if name in out:
            continue
        if not isinstance(name, str) or not name or name.startswith("_"):
            raise DataError(f"Extra result column names must be strings not starting with '_', got {name!r}.")
        if value is None or type(value) in _PLAIN:
            out[name] = value
            continue
        value = _scalar(value)
        if value is not None and not isinstance(value, (str, bool, numbers.Integral, numbers.Real)):
            raise DataError(
                f"Extra result column {name!r} must hold a str, int, float, bool or None, got {type(value).__name__}."
            )
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = int(value)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            value = float(value)
        out[name] = value
    return out


# --------------------------------------------------------------------------
# Journal lines: "<crc32 hex> <json>\n"
# --------------------------------------------------------------------------
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=True)  # made once: json.dumps builds one per call


def _encode(record: Mapping) -> bytes:
    body = _JSON.encode(record).encode("utf-8")
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _decode_journal(data: bytes) -> tuple[list[dict], int]:
    """Records of the complete, intact lines of ``data`` and the bytes they span."""
    records = []
    end = data.rfind(b"\n") + 1  # a kill mid-write leaves at most a partial last line
    for line in data[:end].splitlines():
        crc, _, body = line.partition(b" ")
        try:
            if int(crc, 16) != zlib.crc32(body):
                continue
            records.append(json.loads(body))
        except ValueError:
            continue
    return records, end


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------
def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _column(values: list) -> Any:
    """One column from Python scalars (None, NaN or pd.NA for missing), with one sensible dtype.

    Integers give ``int64`` (``Int64`` with gaps), integers mixed with floats
    ``float64``, bools ``bool`` (``boolean`` with gaps), text ``str``; a
    column written with several other types is kept as text.
    """
    present = [v for v in values if not _missing(v)]
    gaps = len(present) < len(values)
    kinds = {type(v) for v in present}
    if not present:
        return np.full(len(values), np.nan)
    if kinds == {bool}:
        return pd.array([None if _missing(v) else v for v in values], dtype="boolean") if gaps else np.array(values)
    if kinds == {int}:
        if gaps:
            return pd.array([None if _missing(v) else v for v in values], dtype="Int64")
        return np.array(values, dtype=np.int64)
    if kinds <= {int, float}:
        return np.array([np.nan if _missing(v) else v for v in values], dtype=np.float64)
    if kinds != {str}:  # one column written with several types: keep them as text
        values = [None if _missing(v) else str(v) for v in values]
    return pd.array([None if _missing(v) else v for v in values], dtype=_STR) if _STR is not object else values


@functools.cache
def _empty_frame() -> pd.DataFrame:
    """The table of an empty store (shared: never modified in place)."""
    frame = pd.DataFrame({c: pd.Series(dtype=d) for c, d in _CORE_DTYPES.items()})
    frame[_WRITTEN] = pd.Series(dtype=np.int64)
    return frame


def _key(values: Iterable) -> tuple[str, ...]:
    # as text: subject 1 and "1" name the same subject
    return tuple(map(str, values))


def _combine(table: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """Table rows plus journal records, one row per key (the latest write wins), ordered by write time."""
    if not records:
        return table
    latest: dict[tuple, dict] = {}
    for rec in sorted(records, key=lambda r: r[_WRITTEN]):
        key = _key(rec[c] for c in KEY_COLUMNS)
        latest.pop(key, None)  # re-inserted: rows stay in the order of their last write
        latest[key] = rec
    kept_rows = np.arange(len(table))
    if len(table):
        written = table[_WRITTEN].to_numpy()
        table_keys = zip(*(table[c].tolist() for c in KEY_COLUMNS))
        keep = np.ones(len(table), dtype=bool)
        for i, key in enumerate(map(_key, table_keys)):
            rec = latest.get(key)
            if rec is not None:
                if rec[_WRITTEN] >= written[i]:
                    keep[i] = False
                else:  # a table row written later than the journal line (clocks of other hosts)
                    del latest[key]
        kept_rows = np.flatnonzero(keep)
    new = list(latest.values())
    names = dict.fromkeys([*_CORE_DTYPES, *table.columns])
    for rec in records:
        names.update(dict.fromkeys(rec))
    columns = {}
    for name in names:
        if not len(kept_rows):  # nothing of the table stays (a new store: the usual case)
            old = []
        elif name in table.columns:
            old = table[name].take(kept_rows).tolist()
        else:
            old = [None] * len(kept_rows)
        columns[name] = _column(old + [rec.get(name) for rec in new])
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(kept_rows) + len(new)))
    order = np.argsort(frame[_WRITTEN].to_numpy(), kind="stable")
    if (np.diff(order) < 0).any():
        frame = frame.take(order).reset_index(drop=True)
    return frame


def _select(frame: pd.DataFrame, filters: Mapping[str, Any]) -> np.ndarray:
    """Boolean mask of the rows matching every filter (a value or a list of values)."""
    check_names(list(filters), [c for c in frame.columns if c != _WRITTEN], "results column")
    mask = np.ones(len(frame), dtype=bool)
    if not len(frame):
        return mask
    for name, wanted in filters.items():
        if wanted is None:
            continue
        if isinstance(wanted, (str, bytes)) or not isinstance(wanted, Iterable):
            wanted = [wanted]
        wanted = [_scalar(w) for w in wanted]
        column = frame[name]
        if name in ("subject", "session"):  # 1 and "1" name the same subject or session
            column, wanted = column.astype(str), [str(w) for w in wanted]
        mask &= column.isin(wanted).to_numpy()
    return mask


# --------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------
class ResultsStore:
    """Per-fold evaluation results in HDF5, safe against kills and concurrent writers.

    Every record is on disk when :meth:`add` returns; several processes
    (multiprocessing, joblib/loky, Dask workers) may open the same path and
    add records at the same time. See the module docstring for the layout.

    Parameters
    ----------
    path : path-like
        The HDF5 file; created (empty) if missing. Its folder must exist.
    overwrite : bool, default False
        Empty the store when opening it. Only the coordinating process
        should pass it: other processes opening the same path afterwards
        must not, or they would erase what was added meanwhile.
    durable : bool, default True
        ``fsync`` every append and every new HDF5 file before its rename, so a
        record survives a power cut as well as a killed process. ``False`` is
        faster and still survives killed processes (the operating system
        keeps written data; renames stay atomic).
    compact_every : int, default 2000
        Merge the journals into the HDF5 file after this many records added
        through this object.

    Examples
    --------
    >>> with ResultsStore("results.h5") as store:  # doctest: +SKIP
    ...     if not store.has(dataset="D", subject=1, session="0", pipeline="csp", digest=d, fold=0):
    ...         store.add({...})
    ...     df = store.query(pipeline="csp")
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        overwrite: bool = False,
        durable: bool = True,
        compact_every: int = 2000,
    ) -> None:
        self.path = Path(path).expanduser().absolute()
        if not self.path.parent.is_dir():
            raise StoreError(f"Folder of the results store does not exist: {self.path.parent}")
        if isinstance(compact_every, bool) or not isinstance(compact_every, numbers.Integral) or compact_every < 1:
            raise DataError(f"compact_every must be a positive integer, got {compact_every!r}.")
        self.durable = bool(durable)
        self.compact_every = int(compact_every)
        self.journal_dir = self.path.with_name(self.path.name + ".journal")
        self._fd: int | None = None
        self._fd_pid: int | None = None
        self._journal: str | None = None
        self._pending = 0
        self._cache: tuple[tuple, pd.DataFrame, dict[str, int]] | None = None
        self._lock = HeldLock(self.path)
        with self._locked():
            if not self.path.exists():
                self._write_table(_empty_frame(), {})
            else:
                self._read_table()  # a damaged or foreign file fails here, clearly
        if overwrite:
            self.remove()

    # -- context manager / pickling (Dask and loky ship the store to workers) --
    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_fd=None, _fd_pid=None, _journal=None, _pending=0, _cache=None)
        return state

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.path)!r})"

    def __len__(self) -> int:
        return len(self._snapshot())

    def close(self) -> None:
        """Merge the pending journals (of any writer) into the HDF5 file and close this one's journal."""
        # Worker processes (loky, Dask) seldom close their copy; the coordinator's close merges for them.
        if self._pending or (self.journal_dir.is_dir() and any(self.journal_dir.iterdir())):
            self.compact()
        if self._fd is not None and self._fd_pid == os.getpid():
            os.close(self._fd)
        self._fd = self._fd_pid = self._journal = None
        self._pending = 0
        self._lock.close()

    # -- writing --------------------------------------------------------------
    def add(self, record: Mapping[str, Any]) -> None:
        """Store one fold's result; on disk when this returns.

        Parameters
        ----------
        record : dict
            ``dataset, subject, session, pipeline, digest, fold`` (the key),
            ``score, time, n_samples, n_channels, evaluation``, and any extra
            scalar columns. A record with an existing key replaces it.

        Raises
        ------
        neuroenc.errors.DataError
            If a column is missing or holds a value of the wrong type
            (nothing is written then).
        """
        self.add_many([record])

    def add_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Store several results with one write and one ``fsync`` (all or none are checked first)."""
        checked = [_check_record(r) for r in records]
        if not checked:
            return
        with self._locked():
            fd = self._journal_fd()
            written = time.time_ns()
            data = b"".join(_encode({**rec, _WRITTEN: written + i}) for i, rec in enumerate(checked))
            # One write call: a kill leaves whole lines plus at most one partial line.
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self.durable:
                os.fsync(fd)
            self._pending += len(checked)
            due = self._pending >= self.compact_every
        if due:
            self.compact()

    def remove(self, **filters: Any) -> int:
        """Delete the records matching ``filters`` (all records without filters).

        Used to recompute results (``--overwrite``). Filters are column names
        with a value or a list of values.

        Returns
        -------
        int
            The number of records removed.
        """
        return self._compact(filters, remove=True)

    def compact(self) -> None:
        """Merge every journal into the HDF5 file now (atomically)."""
        self._compact({}, remove=False)

    # -- reading --------------------------------------------------------------
    def to_frame(self, **filters: Any) -> pd.DataFrame:
        """The records as a tidy DataFrame, one row per fold.

        Parameters
        ----------
        **filters
            Column name -> value or list of values to keep.

        Returns
        -------
        pandas.DataFrame
            Key columns, value columns, then extra columns in the order they
            first appeared; sorted by key. Integer columns are ``int64``
            (``Int64`` where some records lack them), strings ``str`` (``object``
            before pandas 3), bools ``bool`` (``boolean`` with gaps),
            ``subject`` is ``int64`` when every subject is an integer.
        """
        frame = self._snapshot()
        if filters:
            mask = _select(frame, filters)
            if not mask.all():
                frame = frame.loc[mask]
        frame = frame.drop(columns=_WRITTEN)
        if len(frame) > 1:
            frame = frame.sort_values(list(KEY_COLUMNS), kind="stable")
        return frame.reset_index(drop=True)

    def query(
        self,
        dataset: Any = None,
        pipeline: Any = None,
        subject: Any = None,
        session: Any = None,
        evaluation: Any = None,
        **filters: Any,
    ) -> pd.DataFrame:
        """Records of some datasets / pipelines / subjects (each a value or a list; None for all)."""
        named = {"dataset": dataset, "pipeline": pipeline, "subject": subject, "session": session}
        named["evaluation"] = evaluation
        return self.to_frame(**{k: v for k, v in {**named, **filters}.items() if v is not None})

    def has(self, **key: Any) -> bool:
        """Whether a record matches ``key`` (some or all of the key columns)."""
        check_names(list(key), KEY_COLUMNS, "key column")
        if len(key) == len(KEY_COLUMNS):
            try:
                wanted = (
                    str(key["dataset"]),
                    str(_as_subject(key["subject"])),
                    _as_session(key["session"]),
                    str(key["pipeline"]),
                    str(key["digest"]),
                    int(key["fold"]),
                )
            except (DataError, TypeError, ValueError):
                return False
            return wanted in {(d, str(s), se, p, g, f) for d, s, se, p, g, f in self.done_keys()}
        frame = self._snapshot()
        return bool(_select(frame, key).any())

    def done_keys(self) -> set[tuple]:
        """The keys ``(dataset, subject, session, pipeline, digest, fold)`` stored."""
        frame = self._snapshot()
        return set(zip(*(frame[c].tolist() for c in KEY_COLUMNS)))

    def export_csv(self, path: str | os.PathLike, **filters: Any) -> Path:
        """Write :meth:`to_frame` to a CSV file atomically (temporary file + rename).

        Returns
        -------
        pathlib.Path
            The CSV file written.
        """
        target = Path(path).expanduser()
        if not target.parent.is_dir():
            raise StoreError(f"Folder does not exist: {target.parent}")
        frame = self.to_frame(**filters)
        with replaced_atomically(target) as tmp:
            frame.to_csv(tmp, index=False)
        return target

    # -- internals ------------------------------------------------------------
    def _locked(self) -> HeldLock:
        return self._lock()

    def _journal_fd(self) -> int:
        """This process's journal, reopened if a merge deleted it or after a fork."""
        if self._fd is not None and self._fd_pid == os.getpid():
            # The name is unique and created exclusively: if it exists, it is still this file.
            try:
                os.stat(self._journal)
                return self._fd
            except FileNotFoundError:
                pass
            os.close(self._fd)
        self.journal_dir.mkdir(exist_ok=True)
        self._journal = str(self.journal_dir / f"{os.getpid()}-{uuid.uuid4().hex}.jsonl")
        self._fd = os.open(self._journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        self._fd_pid = os.getpid()
        if self.durable:
            _fsync_path(self.journal_dir)
        return self._fd

    def _read_table(self) -> tuple[pd.DataFrame, dict[str, int]]:
        """The HDF5 table and merged journal offsets (cached while the file is unchanged)."""
        check_hdf5(self.path)
        signature = self._signature()
        if self._cache is not None and self._cache[0] == signature:
            return self._cache[1], self._cache[2]
        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            raise CorruptFileError(f"Cannot open the results store {self.path}: {exc}") from exc
        with f:
            if f.attrs.get("neuroenc_type") != _STORE_TYPE or "records" not in f:
                raise StoreError(f"{self.path} is an HDF5 file but not a neuroenc results store.")
            try:
                table = read_frame(f, "records")
                consumed = json.loads(f.attrs["consumed"])
                if not len(table):  # written without columns
                    table = _empty_frame()
            except (KeyError, ValueError, OSError) as exc:
                raise CorruptFileError(f"The results store {self.path} is damaged: {exc}") from exc
        self._cache = (signature, table, consumed)
        return table, consumed

    def _signature(self) -> tuple[int, int, int]:
        st = os.stat(self.path)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _read_journals(self, consumed: Mapping[str, int]) -> tuple[list[dict], dict[str, tuple[int, int]]]:
        """Unmerged journal records, and per journal (bytes intact up to, file size)."""
        records: list[dict] = []
        spans: dict[str, tuple[int, int]] = {}
        if not self.journal_dir.is_dir():
            return records, spans
        for journal in sorted(self.journal_dir.glob("*.jsonl")):
            start = consumed.get(journal.name, 0)
            try:
                with open(journal, "rb") as fh:
                    fh.seek(start)
                    data = fh.read()
            except FileNotFoundError:
                continue
            new, end = _decode_journal(data)
            records.extend(new)
            spans[journal.name] = (start + end, start + len(data))
        return records, spans

    def _snapshot(self) -> pd.DataFrame:
        with self._locked():
            table, consumed = self._read_table()
            records, _ = self._read_journals(consumed)
        return _combine(table, records)

    def _compact(self, filters: Mapping[str, Any], remove: bool) -> int:
        with self._locked():
            table, consumed = self._read_table()
            records, spans = self._read_journals(consumed)
            self._pending = 0
            if not remove and not spans:
                return 0  # nothing to merge
            frame = _combine(table, records)
            n_removed = 0
            if remove:
                drop = _select(frame, filters) if filters else np.ones(len(frame), dtype=bool)
                n_removed = int(drop.sum())
                frame = frame.loc[~drop].reset_index(drop=True)
            merged, finished = {}, []
            for name, (end, size) in spans.items():
                pid = int(name.split("-", 1)[0]) if name.split("-", 1)[0].isdigit() else -1
                if end < size and not _pid_alive(pid):
                    end = size  # the partial last line of a killed writer will never be completed
                merged[name] = end
                if end == size:
                    finished.append(name)
            self._write_table(frame, merged)
            # Safe to delete only now: the new file records these journals as merged.
            for name in finished:
                (self.journal_dir / name).unlink(missing_ok=True)
        return n_removed

    def _write_table(self, frame: pd.DataFrame, consumed: Mapping[str, int]) -> None:
        """Replace the HDF5 file atomically (temporary file, fsync if durable, rename); caller holds the lock."""
        frame = frame.reset_index(drop=True) if len(frame) else _empty_frame()
        with replaced_atomically(self.path, self.durable) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["neuroenc_type"] = _STORE_TYPE
            f.attrs["format_version"] = _FORMAT_VERSION
            f.attrs["consumed"] = json.dumps(dict(consumed))
            # an empty table is written without columns: a new store costs a third as much to create
            write_frame(f, "records", frame if len(frame) else frame.iloc[:, :0])
        # what was just written need not be read back while the file stays the same
        self._cache = (self._signature(), frame, dict(consumed))
