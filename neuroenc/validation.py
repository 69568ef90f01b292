"""Input validation shared by every public entry point.

Like scikit-learn's ``check_array``, these helpers turn user input into
well-formed numpy arrays or raise a :mod:`neuroenc.errors` exception whose
message says what is wrong and where, *before* any work or write starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuroenc.errors import (
    LabelError,
    MissingFileError,
    NonFiniteError,
    NotSPDError,
    ShapeError,
    UnknownNameError,
)

__all__ = [
    "check_epochs",
    "check_spd",
    "check_square_matrices",
    "check_array",
    "check_finite",
    "check_length",
    "check_choice",
    "check_names",
    "check_file",
    "check_positive",
    "check_real_array",
    "check_estimator_features",
]


def check_finite(X: np.ndarray, name: str = "X") -> None:
    """Raise :class:`NonFiniteError` naming the first NaN/Inf position of ``X``."""
    if X.dtype.kind not in "fc":
        return
    # One cheap O(n) pass without a boolean temporary: a real contiguous array's sum of squares
    # (BLAS, 3x faster than a sum), else its sum. Only a non-finite result (which overflow can
    # also cause) needs the exact scan.
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        if X.dtype.kind == "f" and X.flags.c_contiguous and X.size:
            flat = X.reshape(-1)
            total = np.dot(flat, flat)
        else:
            total = X.sum(dtype=np.float64 if X.dtype.kind == "f" else None)
    if np.isfinite(total):
        return
    bad = ~np.isfinite(X)
    if not bad.any():
        return
    pos = tuple(int(i) for i in np.argwhere(bad)[0])
    value = X[pos]
    kind = "NaN" if np.isnan(value) else "Inf"
    where = pos[0] if len(pos) == 1 else pos
    raise NonFiniteError(
        f"{name} contains {kind} at index {where} ({int(bad.sum())} non-finite "
        f"value(s) in total); remove or impute them first."
    )


def check_array(
    X: Any,
    name: str = "X",
    *,
    ndim: int | Sequence[int] | None = None,
    dtype: Any = "numeric",
    allow_nonfinite: bool = False,
    min_rows: int = 1,
    copy: bool = False,
) -> np.ndarray:
    """Convert ``X`` to a numpy array and check it.

    Parameters
    ----------
    X : array-like
        Input to convert.
    name : str
        Name used in error messages.
    ndim : int or sequence of int, optional
        Allowed numbers of dimensions.
    dtype : "numeric", numpy dtype or None
        ``"numeric"`` keeps float dtypes, converts bool/int to float64 and
        rejects anything else; a dtype casts to it; None keeps the dtype.
    allow_nonfinite : bool
        If False, NaN and Inf raise :class:`~neuroenc.errors.NonFiniteError`.
    min_rows : int
        Minimum length of the first axis.
    copy : bool
        Force a copy.

    Returns
    -------
    numpy.ndarray
        The validated array.
    """
    if X is None:
        raise ShapeError(f"{name} is None; expected an array.")
    try:
        arr = np.array(X, copy=copy) if copy else np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name} cannot be converted to an array: {exc}") from exc
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ShapeError(f"{name} is ragged or holds non-numeric values; expected a numeric array.") from exc
    if isinstance(dtype, str) and dtype == "numeric":
        if arr.dtype.kind in "biu":
            arr = arr.astype(np.float64)
        elif arr.dtype.kind not in "fc":
            raise ShapeError(f"{name} has dtype {arr.dtype}; expected a numeric array.")
    elif dtype is not None:
        if arr.dtype.kind == "c" and np.dtype(dtype).kind != "c":
            # numpy would drop the imaginary part with only a warning.
            raise ShapeError(f"{name} is complex; a real array of dtype {np.dtype(dtype)} is expected.")
        try:
            arr = arr.astype(dtype, copy=False)
        except (TypeError, ValueError) as exc:
            raise ShapeError(f"{name} has dtype {arr.dtype}, which cannot be converted to {dtype}: {exc}") from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            expected = " or ".join(str(d) for d in allowed)
            raise ShapeError(f"{name} has {arr.ndim} dimension(s) with shape {arr.shape}; expected {expected}.")
    if arr.ndim >= 1 and arr.shape[0] < min_rows:
        raise ShapeError(f"{name} has {arr.shape[0]} row(s); at least {min_rows} required.")
    if not allow_nonfinite:
        check_finite(arr, name)
    return arr


def check_length(n_expected: int, values: Any, name: str, of: str = "observations") -> None:
    """Raise :class:`LabelError` if ``len(values) != n_expected``."""
    n = len(values)
    if n != n_expected:
        raise LabelError(f"{name} has {n} entries but there are {n_expected} {of}.")


def check_choice(value: Any, choices: Iterable[Any], name: str) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise :class:`UnknownNameError`."""
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise UnknownNameError(f"Unknown {name} {value!r}; choose one of: {listed}.")
    return value


def check_names(requested: Iterable[Any], available: Iterable[Any], what: str) -> list:
    """Check that every requested name exists; list the available ones otherwise."""
    if isinstance(requested, str):  # one name, not a sequence of characters
        requested = [requested]
    available = list(available)
    avail_set = set(available)
    missing = [r for r in requested if r not in avail_set]
    if missing:
        listed = ", ".join(repr(a) for a in available) or "none"
        raise UnknownNameError(f"Unknown {what}: {', '.join(repr(m) for m in missing)}. Available: {listed}.")
    return list(requested)


def check_file(path: str | os.PathLike, what: str = "file") -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` if it exists, else raise."""
    p = Path(path).expanduser()
    if not p.exists():
        raise MissingFileError(f"{what} not found: {p}")
    return p


def check_positive(value: Any, name: str, *, strict: bool = True) -> float:
    """Check that a scalar is finite and positive (or non-negative)."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name} must be a number, got {value!r}.") from exc
    if not np.isfinite(v) or (v <= 0 if strict else v < 0):
        bound = "> 0" if strict else ">= 0"
        raise ShapeError(f"{name} must be finite and {bound}, got {value!r}.")
    return v


def _index(flat: int, batch_shape: tuple[int, ...]) -> int | tuple[int, ...]:
    pos = np.unravel_index(flat, batch_shape) if batch_shape else ()
    return int(pos[0]) if len(pos) == 1 else tuple(int(p) for p in pos)


def check_square_matrices(X: Any, name: str = "X", *, ndim: int | Sequence[int] | None = None) -> np.ndarray:
    """Float array of square matrices ``(..., n, n)``, finite, with at least one element."""
    arr = check_array(X, name, ndim=ndim, dtype="numeric")
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise ShapeError(f"{name} must hold square matrices (..., n, n); got shape {arr.shape}.")
    if arr.shape[-1] == 0:
        raise ShapeError(f"{name} holds 0 x 0 matrices.")
    if arr.dtype.kind == "c":
        raise ShapeError(f"{name} is complex; real symmetric matrices are expected.")
    return arr.astype(np.float64, copy=False)


def check_spd(X: Any, name: str = "X", *, ndim: int | Sequence[int] | None = None, rtol: float = 1e-7) -> np.ndarray:
    """Check symmetric positive-definite matrices ``(..., n, n)``.

    Parameters
    ----------
    X : array-like
        Matrices; the last two axes are the matrix axes.
    name : str
        Name used in error messages.
    ndim : int or sequence of int, optional
        Allowed numbers of dimensions (e.g. 3 for a batch).
    rtol : float
        Relative asymmetry tolerated: ``|X - X.T| <= rtol * max|X|`` per matrix.

    Returns
    -------
    numpy.ndarray
        ``X`` as float64.

    Raises
    ------
    NonFiniteError, ShapeError, NotSPDError
        The message names the first bad matrix (its batch index).
    """
    arr = check_square_matrices(X, name, ndim=ndim)
    batch = arr.shape[:-2]
    flat = arr.reshape((-1,) + arr.shape[-2:])
    scale = np.abs(flat).max(axis=(1, 2))
    asym = np.abs(flat - flat.transpose(0, 2, 1)).max(axis=(1, 2))
    bad = np.flatnonzero(asym > rtol * np.maximum(scale, np.finfo(float).tiny))
    if bad.size:
        i = int(bad[0])
        raise NotSPDError(
            f"{name}[{_index(i, batch)}] is not symmetric (max |X - X.T| = {asym[i]:.3g}, max |X| = {scale[i]:.3g})."
        )
    # Cholesky succeeds exactly for positive-definite matrices; it is the cheapest test.
    try:
        np.linalg.cholesky(flat)
    except np.linalg.LinAlgError:
        for i, mat in enumerate(flat):
            try:
                np.linalg.cholesky(mat)
            except np.linalg.LinAlgError:
                low = float(np.linalg.eigvalsh((mat + mat.T) / 2)[0])
                raise NotSPDError(
                    f"{name}[{_index(i, batch)}] is not positive definite (smallest eigenvalue "
                    f"{low:.3g}); regularise it (e.g. shrinkage) or check for duplicated channels."
                ) from None
    return arr


def check_epochs(X: Any, name: str = "X", *, min_times: int = 1) -> np.ndarray:
    """Epoched signals as a float64 array ``(n_epochs, n_channels, n_times)``.

    Accepts an array, a :class:`neuroenc.BrainData` with a time axis, or an
    :class:`mne.Epochs` (MNE objects are accepted wherever EEG/MEG is).
    """
    data = X
    if hasattr(X, "modality") and hasattr(X, "obs") and hasattr(X, "data"):  # BrainData
        if X.data.ndim != 3:
            raise ShapeError(f"{name} is a BrainData without a time axis; epochs (obs, channels, times) are needed.")
        data = X.data
    elif hasattr(X, "get_data") and hasattr(X, "info") and hasattr(X, "events"):  # mne.Epochs
        data = X.get_data()
    arr = check_array(data, name, ndim=3, dtype=np.float64)
    if arr.shape[2] < min_times:
        raise ShapeError(f"{name} has {arr.shape[2]} time samples; at least {min_times} needed.")
    return arr


def check_real_array(X: Any, name: str, ndim: int | tuple[int, ...], min_rows: int = 1) -> np.ndarray:
    """Real numeric array, as :func:`check_array`.

    The messages contain the phrases scikit-learn's estimator checks look for.
    """
    if hasattr(X, "tocsr"):
        raise TypeError(f"Sparse input is not supported for {name}; pass a dense array ({name}.toarray()).")
    if isinstance(getattr(X, "dtype", None), np.dtype) and X.dtype.kind == "O":
        X = np.asarray(X).astype(np.float64)  # numbers stored as objects; anything else raises TypeError
    try:
        arr = check_array(X, name, ndim=ndim, min_rows=min_rows)
    except NonFiniteError as exc:
        raise NonFiniteError(f"{exc} NaN or inf values cannot be fitted.") from None
    if arr.dtype.kind == "c":
        raise ShapeError(f"{name} is complex. Complex data not supported; real values are expected.")
    return arr


def check_estimator_features(estimator: Any, X: Any, *, reset: bool) -> np.ndarray:
    """2-D real features of a scikit-learn estimator; record (``reset``) or check their number and column names."""
    names = getattr(X, "columns", None)
    arr = check_real_array(X, "X", ndim=(1, 2))
    if arr.ndim == 1:
        raise ShapeError(
            f"X is 1-D with shape {arr.shape}; expected (n_samples, n_features). Reshape your data with "
            "X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single sample."
        )
    if arr.shape[1] == 0:
        raise ShapeError(f"X has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if reset:
        estimator.n_features_in_ = arr.shape[1]
        if names is not None and all(isinstance(c, str) for c in names):
            estimator.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif arr.shape[1] != estimator.n_features_in_:
        raise ShapeError(
            f"X has {arr.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    return arr
