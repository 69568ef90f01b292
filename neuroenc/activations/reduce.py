"""Reductions of layer activations, applied batch by batch during extraction.

Big layers (an early convolution of an image network holds hundreds of
thousands of units per stimulus) do not fit in memory for thousands of
stimuli. A reduction maps each batch ``(batch, ...)`` to fewer numbers per
stimulus with a transform that is the same for every batch:

* :class:`Flatten` (``"flatten"``): ``(batch, n_units)``, nothing dropped;
* :class:`SpatialMean` (``"mean"``): average over the spatial axes of a
  convolution output or the token axis of a transformer output;
* :class:`SparseRandomProjection` (``"srp"``): a fixed sparse random matrix
  to ``n_components`` dimensions (Li, Hastie & Church 2006; the semantics of
  :class:`sklearn.random_projection.SparseRandomProjection`), which keeps
  pairwise distances up to a small relative error;
* :class:`PCA` (``"pca"``): principal components fitted on the first
  ``n_fit`` stimuli and applied to all.

Every reducer has ``fit``/``transform`` and is deterministic given its
parameters (``random_state`` for the projection). Subclass :class:`Reducer`
for other transforms; a plain callable is applied to every batch as is.
"""

from __future__ import annotations

import copy
import secrets
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from neuroenc.activationdata import per_layer
from neuroenc.errors import ShapeError, UnknownNameError
from neuroenc.validation import check_array, check_choice, check_positive

__all__ = [
    "REDUCERS",
    "Reducer",
    "Flatten",
    "SpatialMean",
    "SparseRandomProjection",
    "PCA",
    "FunctionReducer",
    "make_reducer",
    "resolve_reducers",
]

_BLOCK_BYTES = 1 << 26  # float64 working blocks of the PCA fit: 64 MiB


def _as_rows(X: Any, name: str = "X") -> np.ndarray:
    """Activations ``(n, ...)`` as a numeric array with at least 2 dimensions."""
    arr = check_array(X, name, dtype="numeric")
    if arr.ndim == 0:
        raise ShapeError(f"{name} is a scalar; expected activations (n_stimuli, ...).")
    return arr[:, None] if arr.ndim == 1 else arr


def _work_dtype(X: np.ndarray) -> np.dtype:
    """float64 for float64 input, float32 otherwise (float16 inputs are reduced in float32)."""
    return _work_dtype_of(X.dtype)


def _work_dtype_of(dtype: Any) -> np.dtype:
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def _n_units(shape: Sequence[int]) -> int:
    return int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1


class Reducer:
    """Base class of the reductions.

    A reducer is fitted once, then transforms every batch of a layer the same
    way. Subclasses implement :meth:`transform` and :meth:`output_shape`; a
    reducer that learns from data sets ``n_fit`` (the number of stimuli it is
    fitted on) and implements :meth:`fit` and the state methods so that an
    interrupted extraction can resume with the same transform.

    Attributes
    ----------
    name : str
        Short name (as accepted by :func:`make_reducer`).
    n_fit : int or None
        None: :meth:`fit` only looks at the shape of the first batch.
        An int: the extraction buffers the first ``n_fit`` stimuli and fits on them.
    """

    name = "reducer"
    n_fit: int | None = None
    #: Fewest stimuli :meth:`fit` accepts (checked before an extraction starts when the count is known).
    min_fit_stimuli = 1

    def fit(self, X: Any) -> Reducer:
        """Fit on activations ``(n, ...)``; returns self."""
        self.input_shape_ = tuple(_as_rows(X).shape[1:])
        return self

    def transform(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        """Reduce a batch ``(batch, ...)``."""
        raise NotImplementedError

    def fit_transform(self, X: Any) -> np.ndarray:
        """``fit(X).transform(X)``."""
        return self.fit(X).transform(X)

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...] | None:
        """Per-stimulus output shape for per-stimulus ``input_shape`` (None if unknown before transforming)."""
        return None

    def output_dtype(self, dtype: Any) -> np.dtype:
        """dtype of :meth:`transform` output for input of ``dtype``."""
        return np.dtype(dtype)

    def get_params(self) -> dict[str, Any]:
        """Parameters that define the transform (recorded in files and checked on resume)."""
        return {}

    def config(self) -> dict[str, Any]:
        """``{"name": ..., **params}``: JSON-serialisable description."""
        return {"name": self.name, **self.get_params()}

    def state_shapes(self, input_shape: Sequence[int], dtype: np.dtype) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Shapes and dtypes of the fitted arrays :meth:`get_state` returns."""
        return {}

    def get_state(self) -> dict[str, np.ndarray]:
        """Fitted arrays needed to rebuild the transform (stored by a streaming extraction)."""
        return {}

    def set_state(self, input_shape: Sequence[int], state: Mapping[str, np.ndarray]) -> Reducer:
        """Rebuild a fitted reducer from :meth:`get_state` output."""
        self.input_shape_ = tuple(input_shape)
        return self

    def _check_fitted(self, X: np.ndarray) -> None:
        if not hasattr(self, "input_shape_"):
            raise ShapeError(f"{type(self).__name__} is not fitted; call fit first.")
        if tuple(X.shape[1:]) != self.input_shape_:
            raise ShapeError(
                f"{type(self).__name__} was fitted on stimuli of shape {self.input_shape_}, got {tuple(X.shape[1:])}."
            )

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


class Flatten(Reducer):
    """All units of a stimulus as one vector: ``(batch, ...) -> (batch, n_units)``.

    Examples
    --------
    >>> import numpy as np
    >>> Flatten().fit_transform(np.ones((2, 3, 4, 4))).shape
    (2, 48)
    """

    name = "flatten"

    def transform(self, X: Any) -> np.ndarray:
        """``X.reshape(len(X), -1)``."""
        X = _as_rows(X)
        self._check_fitted(X)
        return X.reshape(X.shape[0], -1)

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        return (_n_units((0, *input_shape)),)


class SpatialMean(Reducer):
    """Average over the spatial axes of a convolution or the token axis of a sequence.

    Parameters
    ----------
    axes : "auto" or sequence of int
        Axes of the batch array to average (axis 0 is the stimulus axis and
        cannot be averaged). ``"auto"``: for ``(batch, channels, *spatial)``
        outputs of 2-D/3-D convolutions (4 or more dimensions) the spatial
        axes ``2, 3, ...``; for ``(batch, tokens, features)`` (3 dimensions,
        the batch-first layout of transformers) the token axis 1; 2-D
        outputs are returned as they are. Give ``axes=(2,)`` for the length
        axis of a 1-D convolution ``(batch, channels, length)``.

    Examples
    --------
    >>> import numpy as np
    >>> SpatialMean().fit_transform(np.ones((2, 8, 5, 5))).shape
    (2, 8)
    >>> SpatialMean().fit_transform(np.ones((2, 7, 16))).shape  # tokens averaged
    (2, 16)
    """

    name = "mean"

    def __init__(self, axes: str | Sequence[int] = "auto") -> None:
        if isinstance(axes, str):
            check_choice(axes, ["auto"], "axes")
        else:
            axes = tuple(int(a) for a in axes)
            if not axes or min(axes) < 1:
                raise ShapeError(f"axes must be axes >= 1 of the batch array (0 is the stimulus axis), got {axes}.")
        self.axes = axes

    def get_params(self) -> dict[str, Any]:
        return {"axes": self.axes if isinstance(self.axes, str) else list(self.axes)}

    def _axes(self, ndim: int) -> tuple[int, ...]:
        if self.axes == "auto":
            return () if ndim <= 2 else (1,) if ndim == 3 else tuple(range(2, ndim))
        if max(self.axes) >= ndim:
            raise ShapeError(f"axes {self.axes} do not exist in a {ndim}-D batch array.")
        return self.axes

    def transform(self, X: Any) -> np.ndarray:
        """Mean over the axes, accumulated in float64, returned in the working dtype."""
        X = _as_rows(X)
        self._check_fitted(X)
        axes = self._axes(X.ndim)
        if not axes:
            return X.astype(_work_dtype(X), copy=False)
        return X.mean(axis=axes, dtype=np.float64).astype(_work_dtype(X), copy=False)

    def output_dtype(self, dtype: Any) -> np.dtype:
        return _work_dtype_of(dtype)

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        full = (0, *input_shape) if input_shape else (0, 1)
        axes = set(self._axes(len(full)))
        return tuple(s for i, s in enumerate(full) if i > 0 and i not in axes)


class SparseRandomProjection(Reducer):
    """Projection of the flattened units onto a fixed sparse random matrix.

    The matrix ``R`` of shape ``(n_components, n_units)`` has entries
    ``+s`` or ``-s`` with probability ``density / 2`` each and 0 otherwise,
    with ``s = 1 / sqrt(density * n_components)``, so that squared norms and
    distances are preserved in expectation. These are the semantics of
    :class:`sklearn.random_projection.SparseRandomProjection`
    (``density="auto"`` is ``1 / sqrt(n_units)``); the random draws differ.
    The matrix depends only on ``(n_units, n_components, density,
    random_state)``, so every batch, and every rerun, uses the same one.

    Parameters
    ----------
    n_components : int
        Output dimension.
    density : "auto" or float in (0, 1]
        Fraction of non-zero entries.
    random_state : int or None
        Seed. None draws a fresh seed at construction (then a resumed
        streaming extraction cannot prove it uses the same matrix and refuses).

    Attributes
    ----------
    components_ : scipy.sparse.csr_matrix, shape (n_components, n_units)
    density_ : float

    Examples
    --------
    >>> import numpy as np
    >>> srp = SparseRandomProjection(64, random_state=0).fit(np.zeros((1, 3, 32, 32)))
    >>> srp.transform(np.ones((5, 3, 32, 32))).shape
    (5, 64)
    """

    name = "srp"

    def __init__(self, n_components: int = 4096, *, density: str | float = "auto", random_state: int | None = 0):
        if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or n_components < 1:
            raise ShapeError(f"n_components must be a positive integer, got {n_components!r}.")
        if isinstance(density, str):
            check_choice(density, ["auto"], "density")
        else:
            density = check_positive(density, "density")
            if density > 1:
                raise ShapeError(f"density must be in (0, 1], got {density}.")
        if random_state is None:
            random_state = secrets.randbits(63)
        elif isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
            raise ShapeError(f"random_state must be an int or None, got {random_state!r}.")
        self.n_components = int(n_components)
        self.density = density
        self.random_state = int(random_state)

    def get_params(self) -> dict[str, Any]:
        return {"n_components": self.n_components, "density": self.density, "random_state": self.random_state}

    def fit(self, X: Any) -> SparseRandomProjection:
        """Draw the matrix for the number of units of ``X`` (only its shape is used)."""
        X = _as_rows(X)
        return self._build(tuple(X.shape[1:]))

    def _build(self, input_shape: tuple[int, ...]) -> SparseRandomProjection:
        import scipy.sparse as sp

        n_features = _n_units((0, *input_shape))
        density = 1.0 / np.sqrt(n_features) if self.density == "auto" else float(self.density)
        density = min(density, 1.0)
        if self.n_components > n_features:
            warnings.warn(
                f"n_components={self.n_components} is larger than the {n_features} units; "
                "the projection does not reduce the dimension.",
                UserWarning,
                stacklevel=3,
            )
        rng = np.random.default_rng(self.random_state)
        k = self.n_components
        counts = rng.binomial(n_features, density, size=k)
        indices = np.concatenate([rng.choice(n_features, c, replace=False) for c in counts]).astype(np.int64)
        indptr = np.concatenate(([0], np.cumsum(counts)))
        scale = 1.0 / np.sqrt(density * k)
        data = np.where(rng.random(len(indices)) < 0.5, -scale, scale)
        R = sp.csr_matrix((data, indices, indptr), shape=(k, n_features))
        R.sort_indices()
        self.components_ = R
        self.density_ = density
        self.input_shape_ = input_shape
        self._by_dtype: dict[np.dtype, Any] = {}
        return self

    def transform(self, X: Any) -> np.ndarray:
        """``X_flat @ R.T`` in the working dtype (float32 input stays float32)."""
        X = _as_rows(X)
        self._check_fitted(X)
        dtype = _work_dtype(X)
        RT = self._by_dtype.get(dtype)
        if RT is None:  # R.T as CSR: dense @ CSR avoids transposing the (large) batch
            RT = self._by_dtype[dtype] = self.components_.T.tocsr().astype(dtype)
        flat = X.reshape(X.shape[0], -1).astype(dtype, copy=False)
        return np.ascontiguousarray(flat @ RT)

    def output_dtype(self, dtype: Any) -> np.dtype:
        return _work_dtype_of(dtype)

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        return (self.n_components,)

    def set_state(self, input_shape: Sequence[int], state: Mapping[str, np.ndarray]) -> SparseRandomProjection:
        return self._build(tuple(input_shape))


class PCA(Reducer):
    """Principal components fitted on the first ``n_fit`` stimuli, applied to all.

    The fit is exact (the eigendecomposition of the ``n x n`` Gram matrix of
    the centred stimuli, or of the ``p x p`` covariance when there are fewer
    units than stimuli, accumulated in float64 blocks so that the fit needs
    no float64 copy of the data). The components equal those of
    :class:`sklearn.decomposition.PCA` with the same sign convention: the
    largest entry of each component is positive.

    Parameters
    ----------
    n_components : int
        Number of components (at most ``min(n_fit, n_units)``).
    n_fit : int
        During extraction, the first ``n_fit`` stimuli (all, if there are
        fewer) are buffered unreduced, the PCA is fitted on them, and every
        stimulus is projected. The buffer costs ``n_fit x n_units`` values of
        the layer; the fitted components ``n_components x n_units``.
        :meth:`fit` called directly uses all rows it is given.

    Attributes
    ----------
    mean_ : ndarray, shape (n_units,)
    components_ : ndarray, shape (n_components, n_units)
    explained_variance_ : ndarray, shape (n_components,)
        Variance along each component (``n - 1`` in the denominator).
    explained_variance_ratio_ : ndarray, shape (n_components,)

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((50, 4, 6))
    >>> PCA(5).fit(X).transform(X).shape
    (50, 5)
    """

    name = "pca"

    def __init__(self, n_components: int = 256, *, n_fit: int = 1000) -> None:
        for value, label in ((n_components, "n_components"), (n_fit, "n_fit")):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ShapeError(f"{label} must be a positive integer, got {value!r}.")
        if n_fit < n_components:
            raise ShapeError(f"n_fit={n_fit} is smaller than n_components={n_components}.")
        self.n_components = int(n_components)
        self.n_fit = int(n_fit)
        self.min_fit_stimuli = self.n_components

    def get_params(self) -> dict[str, Any]:
        return {"n_components": self.n_components, "n_fit": self.n_fit}

    def fit(self, X: Any) -> PCA:
        """Fit on every row of ``X``."""
        X = _as_rows(X)
        flat = X.reshape(X.shape[0], -1)
        n, p = flat.shape
        k = self.n_components
        if k > min(n, p):
            raise ShapeError(
                f"PCA with n_components={k} needs at least {k} stimuli and {k} units; got {n} x {p}. "
                "Lower n_components."
            )
        dtype = _work_dtype(X)
        mean = flat.mean(axis=0, dtype=np.float64)
        if p >= n:
            comps, eigvals, total = _pca_gram(flat, mean, k)
        else:
            comps, eigvals, total = _pca_covariance(flat, mean, k)
        # sklearn's convention (svd_flip with u_based_decision=False): the largest |entry| is positive.
        signs = np.sign(comps[np.arange(k), np.argmax(np.abs(comps), axis=1)])
        comps *= np.where(signs == 0, 1.0, signs)[:, None]
        self.input_shape_ = tuple(X.shape[1:])
        self.mean_ = mean.astype(dtype)
        self.components_ = comps.astype(dtype)
        self.explained_variance_ = eigvals / max(n - 1, 1)
        self.explained_variance_ratio_ = eigvals / total if total > 0 else np.zeros(k)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """``(X_flat - mean_) @ components_.T``."""
        X = _as_rows(X)
        self._check_fitted(X)
        flat = X.reshape(X.shape[0], -1)
        centred = np.subtract(flat, self.mean_, dtype=self.components_.dtype)
        return centred @ self.components_.T

    def output_dtype(self, dtype: Any) -> np.dtype:
        return _work_dtype_of(dtype)

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        return (self.n_components,)

    def state_shapes(self, input_shape: Sequence[int], dtype: np.dtype) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        p = _n_units((0, *input_shape))
        work = _work_dtype_of(dtype)
        k = self.n_components
        return {
            "mean_": ((p,), work),
            "components_": ((k, p), work),
            "explained_variance_": ((k,), np.dtype(np.float64)),
            "explained_variance_ratio_": ((k,), np.dtype(np.float64)),
        }

    def get_state(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.state_shapes((1,), np.float64)}

    def set_state(self, input_shape: Sequence[int], state: Mapping[str, np.ndarray]) -> PCA:
        for name in self.state_shapes((1,), np.float64):
            setattr(self, name, np.asarray(state[name]))
        self.input_shape_ = tuple(input_shape)
        return self


def _column_blocks(n_rows: int, p: int) -> range:
    step = max(1, _BLOCK_BYTES // (8 * max(n_rows, 1)))
    return range(0, p, step)


def _pca_gram(flat: np.ndarray, mean: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Top components from the n x n Gram matrix of the centred rows (wide data)."""
    n, p = flat.shape
    gram = np.zeros((n, n))
    blocks = _column_blocks(n, p)
    for j in blocks:
        block = flat[:, j : j + blocks.step].astype(np.float64) - mean[j : j + blocks.step]
        gram += block @ block.T
    eigvals, eigvecs = np.linalg.eigh(gram)
    order = np.argsort(eigvals)[::-1][:k]
    eigvals = np.clip(eigvals[order], 0.0, None)
    sing = np.sqrt(eigvals)
    U = eigvecs[:, order] / np.where(sing > 0, sing, 1.0)
    comps = np.empty((k, p))
    for j in blocks:
        block = flat[:, j : j + blocks.step].astype(np.float64) - mean[j : j + blocks.step]
        comps[:, j : j + blocks.step] = U.T @ block
    return comps, eigvals, float(np.trace(gram))


def _pca_covariance(flat: np.ndarray, mean: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Top components from the p x p scatter matrix (more stimuli than units)."""
    n, p = flat.shape
    scatter = np.zeros((p, p))
    step = max(1, _BLOCK_BYTES // (8 * p))
    for i in range(0, n, step):
        block = flat[i : i + step].astype(np.float64) - mean
        scatter += block.T @ block
    eigvals, eigvecs = np.linalg.eigh(scatter)
    order = np.argsort(eigvals)[::-1][:k]
    return np.ascontiguousarray(eigvecs[:, order].T), np.clip(eigvals[order], 0.0, None), float(np.trace(scatter))


class FunctionReducer(Reducer):
    """A plain callable ``f(batch) -> (batch, ...)`` applied to every batch (no fitting).

    The callable must be deterministic and must treat stimuli independently
    (a batch statistic would make the result depend on the batch size).
    """

    name = "function"

    def __init__(self, func: Callable[[np.ndarray], Any]) -> None:
        if not callable(func):
            raise UnknownNameError(f"{func!r} is not callable.")
        self.func = func

    def get_params(self) -> dict[str, Any]:
        return {
            "function": f"{getattr(self.func, '__module__', '?')}.{getattr(self.func, '__qualname__', repr(self.func))}"
        }

    def transform(self, X: Any) -> np.ndarray:
        X = _as_rows(X)
        out = check_array(self.func(X), "the output of the reduce function", dtype="numeric")
        if out.ndim == 0 or out.shape[0] != X.shape[0]:
            raise ShapeError(
                f"The reduce function returned shape {out.shape} for a batch of {X.shape[0]} stimuli; "
                "it must keep one row per stimulus."
            )
        return out


#: Names accepted by :func:`make_reducer`, with the class each builds.
REDUCERS: dict[str, type[Reducer]] = {
    "flatten": Flatten,
    "mean": SpatialMean,
    "srp": SparseRandomProjection,
    "pca": PCA,
}


def make_reducer(spec: str | Reducer | Callable | None) -> Reducer | None:
    """A fresh reducer from a name, a reducer (copied) or a callable.

    Parameters
    ----------
    spec : {"flatten", "mean", "srp", "pca"}, Reducer, callable or None
        A name builds the class of :data:`REDUCERS` with its default
        parameters (``"srp"``: 4096 components, ``random_state=0``;
        ``"pca"``: 256 components fitted on 1000 stimuli); a :class:`Reducer`
        is deep-copied (so that each layer gets its own fit); a callable is
        wrapped in :class:`FunctionReducer`; None means no reduction.

    Returns
    -------
    Reducer or None
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        return REDUCERS[check_choice(spec, REDUCERS, "reduction")]()
    if isinstance(spec, Reducer):
        return copy.deepcopy(spec)
    if callable(spec):
        return FunctionReducer(spec)
    raise UnknownNameError(
        f"reduce must be a name ({', '.join(map(repr, REDUCERS))}), a Reducer, a callable, "
        f"a dict of those per layer, or None; got {type(spec).__name__}."
    )


def resolve_reducers(reduce: Any, layer_names: Sequence[str]) -> dict[str, Reducer | None]:
    """One fresh reducer (or None) per layer.

    Parameters
    ----------
    reduce : name, Reducer, callable, dict or None
        One spec for every layer, or a dict ``{layer name or glob:
        spec}``; exact names take precedence over globs, then the first
        matching glob wins; layers matched by no key are not reduced. A key
        that matches no layer raises :class:`UnknownNameError`.
    layer_names : sequence of str
        The selected layers.
    """
    specs = per_layer(reduce, layer_names, "reduce")
    for spec in specs.values():
        make_reducer(spec)  # validate every spec before building any
    return {name: make_reducer(spec) for name, spec in specs.items()}
