"""Searchlight RSA: an RDM around every voxel (or sensor and time), compared with model RDMs.

:func:`volume_searchlight` moves a sphere (radius in mm) through a brain mask;
:func:`sensor_searchlight` moves a channel neighbourhood (channel adjacency)
and a time window through EEG/MEG epochs; :func:`searchlight` runs any
:class:`~neuroenc.rsa.neighbourhoods.Neighbourhoods`. At every centre the RDM
of the covered features is computed with the dissimilarities of
:func:`~neuroenc.rsa.compute.compute_rdm` (including crossnobis with
multivariate noise normalisation, the noise covariance being estimated
within each searchlight) and compared with the model RDMs
(:func:`~neuroenc.rsa.comparisons.compare`).

How it runs
    Observations are averaged per condition (and per fold for crossvalidated
    methods) once for the whole brain, since averaging commutes with
    selecting features. Centres are sorted by neighbourhood size and cut into
    chunks; in a chunk, neighbourhoods of equal size are gathered into one
    ``(n_sets, ..., size)`` array and their RDMs computed in one batched call
    (:func:`~neuroenc.rsa.compute.rdm_vectors`), their noise precisions in
    another (:func:`~neuroenc.rsa.noise.prec_from_residuals`). Only the
    scores (n_models per centre) are kept, so peak memory depends on the
    chunk size and the data, not on the number of centres (unless
    ``return_rdms=True``). Chunks run in parallel on joblib: threads (the
    default; numpy and BLAS release the GIL), loky processes, or a Dask
    cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from neuroenc.errors import DataError, LabelError, ModalityError, ShapeError
from neuroenc.rsa.neighbourhoods import (
    Neighbourhoods,
    SensorTimeNeighbourhoods,
    VolumeNeighbourhoods,
    adjacency_from_info,
)
from neuroenc.validation import check_array, check_choice, check_length, check_names, check_positive

if TYPE_CHECKING:  # pragma: no cover
    import mne
    import nibabel

    from neuroenc.braindata import BrainData
    from neuroenc.rsa.rdms import RDMs

__all__ = ["BACKENDS", "SearchlightResult", "searchlight", "sensor_searchlight", "volume_searchlight"]

#: parallel backends: joblib's threads, joblib's loky processes, a Dask cluster
BACKENDS = ("threads", "loky", "dask")
_JOBLIB_NAMES = {"threads": "threading", "loky": "loky", "dask": "dask"}
#: bytes of gathered patterns and residuals per chunk that the default chunk size aims at
_CHUNK_BYTES = 16 * 2**20
#: tasks per worker: several, so that chunks of large and small spheres balance out
_TASKS_PER_WORKER = 4


# ----------------------------------------------------------------------
# result
class SearchlightResult:
    """Model similarities (and optionally RDMs) at every searchlight centre.

    Attributes
    ----------
    scores : numpy.ndarray, shape (n_models, n_centres)
        Similarity of each model with the RDM of each centre.
    model_names : list of str
        One name per model (from the ``name`` or ``model`` metadata column of
        the model RDMs, else ``model0``, ``model1``, ...).
    rdms : RDMs or None
        The searchlight RDMs, one per centre, when ``return_rdms=True``.
    neighbourhoods : Neighbourhoods
        Centres and their features.
    method, comparison : str
        Dissimilarity measure and comparison method.
    conditions : numpy.ndarray
        Condition labels (the order of the RDM rows).
    ch_names, times, info, modality
        Sensor searchlights only: channel names, centre times (s), the
        ``mne.Info`` of the data (or None) and the modality.
    """

    def __init__(
        self,
        scores: np.ndarray,
        model_names: list[str],
        neighbourhoods: Neighbourhoods,
        method: str,
        comparison: str | None,
        conditions: np.ndarray,
        rdms: RDMs | None = None,
    ) -> None:
        self.scores = scores
        self.model_names = model_names
        self.neighbourhoods = neighbourhoods
        self.method = method
        self.comparison = comparison
        self.conditions = conditions
        self.rdms = rdms
        self.ch_names: list[str] | None = None
        self.times: np.ndarray | None = None
        self.info: mne.Info | None = None
        self.modality: str | None = None

    def __repr__(self) -> str:
        models = ", ".join(self.model_names) or "none"
        return (
            f"<SearchlightResult | {self.neighbourhoods.n_centres} centres, method={self.method!r}, "
            f"comparison={self.comparison!r}, models: {models}>"
        )

    @property
    def n_models(self) -> int:
        """Number of models."""
        return self.scores.shape[0]

    @property
    def maps(self) -> np.ndarray:
        """Scores in the data's space.

        ``(n_models, nx, ny, nz)`` for a volume searchlight (NaN where no
        centre), ``(n_models, n_channels, n_centre_times)`` for a sensor
        searchlight.
        """
        nb = self.neighbourhoods
        if isinstance(nb, VolumeNeighbourhoods):
            out = np.full((self.n_models,) + nb.mask.shape, np.nan)
            i, j, k = nb.centre_ijk.T
            out[:, i, j, k] = self.scores
            return out
        if isinstance(nb, SensorTimeNeighbourhoods):
            return self.scores.reshape(self.n_models, nb.n_channels, nb.n_centre_times)
        return self.scores

    def to_nifti(self, fill: float = np.nan) -> nibabel.Nifti1Image:
        """One volume per model, with the mask's affine (volume searchlights).

        Parameters
        ----------
        fill : float
            Value of voxels that are not centres (outside the mask, or
            excluded by the threshold).

        Returns
        -------
        nibabel.Nifti1Image
            4-D image ``(nx, ny, nz, n_models)``.
        """
        nb = self.neighbourhoods
        if not isinstance(nb, VolumeNeighbourhoods):
            raise ModalityError("to_nifti needs a volume searchlight.")
        self._check_models()
        return nb.to_nifti(self.scores, fill=fill)

    def to_braindata(self) -> BrainData:
        """Scores as a BrainData: one observation per model, channels x centre times (sensor searchlights).

        ``obs`` has ``condition`` = ``model`` = the model name; ``times`` are
        the centre times; ``info`` is the data's (with ``sfreq`` divided by
        the time step).
        """
        from neuroenc.braindata import BrainData

        nb = self._sensor()
        info = None if self.info is None else _info_with_sfreq(self.info, self.info["sfreq"] / nb.step)
        obs = pd.DataFrame({"condition": self.model_names, "model": self.model_names})
        return BrainData(
            self.maps,
            obs,
            self.modality or "eeg",
            features=self.ch_names,
            times=self.times,
            info=info,
        )

    def to_evoked(self, model: int | str = 0) -> mne.EvokedArray:
        """One model's scores as an :class:`mne.EvokedArray` (channels x centre times) for MNE's plots.

        Needs the data's ``mne.Info`` (channel positions for topographies).
        """
        import mne

        nb = self._sensor()
        if self.info is None:
            raise ModalityError("to_evoked needs the data's mne.Info (pass info= or a BrainData with info).")
        if isinstance(model, str):
            idx = self.model_names.index(check_choice(model, self.model_names, "model"))
        else:
            idx = int(model)
            if not -self.n_models <= idx < self.n_models:
                raise ShapeError(f"model index {idx} out of range for {self.n_models} model(s).")
        info = _info_with_sfreq(self.info, self.info["sfreq"] / nb.step)
        return mne.EvokedArray(
            self.maps[idx], info, tmin=float(self.times[0]), comment=self.model_names[idx], nave=1, verbose="error"
        )

    def _sensor(self) -> SensorTimeNeighbourhoods:
        if not isinstance(self.neighbourhoods, SensorTimeNeighbourhoods) or self.times is None:
            raise ModalityError("This conversion needs the result of sensor_searchlight.")
        self._check_models()
        return self.neighbourhoods

    def _check_models(self) -> None:
        if self.n_models == 0:
            raise DataError("The searchlight ran with no model: there are no scores to map (the RDMs are in .rdms).")


def _info_with_sfreq(info: mne.Info, sfreq: float) -> mne.Info:
    """A copy of ``info`` (positions kept) at the sampling rate of the centre times."""
    out = info.copy()
    if sfreq != out["sfreq"]:
        # MNE locks sfreq against direct edits (its resample methods change it this way)
        with out._unlock():
            out["sfreq"] = float(sfreq)
    return out


# ----------------------------------------------------------------------
# the work on one chunk of centres
class _Job:
    """Everything a worker needs: condition means, residuals, neighbourhoods, models.

    Feature-major copies (``means_t``, ``residuals_t``) make the gather of a
    sphere's features a read of contiguous rows.
    """

    def __init__(
        self,
        means: np.ndarray,
        counts: np.ndarray | None,
        residuals_t: np.ndarray | None,
        noise_method: str | None,
        noise_dof: float | None,
        neighbourhoods: Neighbourhoods,
        method: str,
        models: np.ndarray | None,
        comparison: str | None,
        remove_mean: bool,
        keep_rdms: bool,
    ) -> None:
        self.core_shape = means.shape[:-1]  # (n_folds, n_cond) or (n_cond,)
        self.means_t = np.ascontiguousarray(means.reshape(-1, means.shape[-1]).T)
        self.counts = counts
        self.residuals_t = residuals_t
        self.noise_method = noise_method
        self.noise_dof = noise_dof
        self.neighbourhoods = neighbourhoods
        self.method = method
        self.models = models
        self.comparison = comparison
        self.remove_mean = remove_mean
        self.keep_rdms = keep_rdms

    def group_vectors(self, idx: np.ndarray) -> np.ndarray:
        """RDM vectors of neighbourhoods of equal size, ``idx`` (n_sets, size)."""
        from neuroenc.rsa.compute import rdm_vectors

        n_sets, size = idx.shape
        patterns = self.means_t[idx].transpose(0, 2, 1).reshape((n_sets,) + self.core_shape + (size,))
        precision = None
        if self.residuals_t is not None:
            from neuroenc.rsa.noise import prec_from_residuals

            residuals = self.residuals_t[idx].transpose(0, 2, 1)  # (n_sets, n_res, size)
            precision = prec_from_residuals(residuals, dof=self.noise_dof, method=self.noise_method)
        return rdm_vectors(
            patterns,
            self.method,
            counts=self.counts,
            precision=precision,
            remove_mean=self.remove_mean,
            n_jobs=1,
        )

    def __call__(self, chunks: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
        return [self.run_chunk(c) for c in chunks]

    def run_chunk(self, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(centres, scores (n, n_models) or None, vectors (n, n_pairs) or None)`` of centres sorted by size."""
        from neuroenc.rsa.comparisons import compare_vectors

        members = self.neighbourhoods.members(centres)
        sizes = self.neighbourhoods.sizes[centres]
        n_cond = self.core_shape[-1]
        vectors = np.empty((len(centres), n_cond * (n_cond - 1) // 2))
        bounds = np.flatnonzero(np.diff(sizes)) + 1
        for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(centres)]):
            block = members[start:stop]
            idx = block[block >= 0].reshape(stop - start, sizes[start])
            vectors[start:stop] = self.group_vectors(idx)
        scores = None
        if self.models is not None:
            scores = compare_vectors(vectors, self.models, self.comparison, n_jobs=1)
        return centres, scores, vectors if self.keep_rdms else None


def _run_block(job: _Job, chunks: list[np.ndarray]):
    """Module-level entry point of a task (picklable for process and Dask workers)."""
    return job(chunks)


# ----------------------------------------------------------------------
# input handling
def _model_vectors(models: Any, conditions: np.ndarray) -> tuple[np.ndarray | None, list[str]]:
    """Model RDM vectors in the data's condition order, and their names."""
    from neuroenc.rsa.rdms import RDMs

    if models is None:
        return None, []
    if isinstance(models, (list, tuple)) and models and all(isinstance(m, RDMs) for m in models):
        models = RDMs.concatenate(models)
    if not isinstance(models, RDMs):
        if hasattr(models, "get_vectors") and hasattr(models, "pattern_descriptors"):  # rsatoolbox RDMs
            models = RDMs.from_rsatoolbox(models)
        else:
            models = RDMs(models)
    labels = np.asarray(models.conditions)
    default = labels.dtype.kind in "iu" and np.array_equal(labels, np.arange(len(labels)))
    if models.n_conditions != len(conditions):
        raise ShapeError(
            f"The model RDMs have {models.n_conditions} conditions, the data {len(conditions)} "
            f"({', '.join(map(str, conditions[:8]))}{', ...' if len(conditions) > 8 else ''})."
        )
    if not default:
        if set(map(str, labels)) != set(map(str, conditions)):
            raise LabelError(
                f"The model RDMs' conditions {list(labels)[:8]} differ from the data's {list(conditions)[:8]}."
            )
        by_text = {str(c): c for c in labels}
        models = models.subset_conditions([by_text[str(c)] for c in conditions])
    for col in ("name", "model"):
        if col in models.metadata.columns:
            names = [str(v) for v in models.metadata[col]]
            break
    else:
        names = [f"model{i}" for i in range(models.n_rdms)]
    if np.isnan(models.vectors).all(axis=1).any():
        raise DataError("A model RDM has no defined dissimilarity.")
    return models.vectors, names


def _fold_labels(data: Any, folds: Any, n_obs: int, cond_labels: np.ndarray) -> Any:
    """Folds as compute_rdm chooses them: given, a BrainData's ``run`` column, or split by repetition."""
    if folds is None and hasattr(data, "obs") and "run" in data.obs.columns:
        return "run"
    if folds is None:
        from neuroenc.rsa.compute import _default_folds

        values, inverse = np.unique(cond_labels, return_inverse=True)
        return _default_folds(inverse.reshape(-1), len(values))
    return folds


def _noise_inputs(
    noise: Any, noise_method: str, noise_dof: Any, method: str, X: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray | None, str | None, float | None]:
    """Residuals, feature-major (n_features, n_res), estimator and dof of the per-searchlight noise model."""
    from neuroenc.rsa.compute import condition_means
    from neuroenc.rsa.noise import NOISE_METHODS

    if noise is None:
        return None, None, None
    if method not in ("mahalanobis", "crossnobis"):
        raise DataError(f"noise is only used by 'mahalanobis' and 'crossnobis', not by {method!r}.")
    if isinstance(noise, str):
        # compute_rdm's noise=<estimator>: residuals of the observations about their condition means
        check_choice(noise, NOISE_METHODS, "noise estimation method")
        cm = condition_means(X, labels, n_jobs=1)
        dof = X.shape[0] - len(cm.conditions) if noise_dof is None else check_positive(noise_dof, "noise_dof")
        if dof <= 0:
            raise ShapeError("Every condition has a single observation: there are no residuals to estimate noise from.")
        # feature-major (the layout of the per-sphere gathers), formed in place: one data-sized copy
        residuals_t = np.ascontiguousarray(X.T)
        _, inverse = np.unique(labels, return_inverse=True)
        inverse = inverse.reshape(-1)
        for c, mean in enumerate(cm.means[0]):
            rows = np.flatnonzero(inverse == c)
            residuals_t[:, rows] -= mean[:, None]
        return residuals_t, noise, float(dof)
    check_choice(noise_method, NOISE_METHODS, "noise estimation method")
    if hasattr(noise, "data") and hasattr(noise, "obs"):  # BrainData of residuals
        noise = noise.data
    residuals = check_array(noise, "noise residuals", ndim=(2, 3), dtype=np.float64)
    residuals = residuals.reshape(residuals.shape[0], -1)
    if residuals.shape[1] != X.shape[1]:
        raise ShapeError(
            f"noise residuals have {residuals.shape[1]} features, the data {X.shape[1]}; give residuals "
            "(n_residuals, n_features) over the same features."
        )
    if residuals.shape[0] < 2:
        raise ShapeError("noise residuals need at least 2 rows.")
    dof = residuals.shape[0] - 1 if noise_dof is None else check_positive(noise_dof, "noise_dof")
    return np.ascontiguousarray(residuals.T), noise_method, float(dof)


def _chunk_size(chunk_size: int | None, neighbourhoods: Neighbourhoods, n_rows: int, n_res: int) -> int:
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
            raise ShapeError(f"chunk_size must be a positive integer, got {chunk_size!r}.")
        return int(chunk_size)
    widest = int(neighbourhoods.sizes.max())
    per_centre = 8 * widest * (n_rows + n_res + (widest if n_res else 0)) + 8 * widest
    return int(np.clip(_CHUNK_BYTES // max(per_centre, 1), 16, 4096))


def _tasks(sizes: np.ndarray, chunk: int, n_workers: int) -> list[list[np.ndarray]]:
    """Chunks of centres sorted by size, dealt round-robin into a few tasks per worker."""
    order = np.argsort(sizes, kind="stable")
    chunks = [order[i : i + chunk] for i in range(0, len(order), chunk)]
    n_tasks = min(len(chunks), max(1, n_workers * _TASKS_PER_WORKER))
    return [chunks[t::n_tasks] for t in range(n_tasks)]


def _n_workers(backend: str | None, n_jobs: int | None) -> int:
    """Workers the run will use; checks that a Dask client exists before any work starts."""
    from neuroenc._kernels.parallel import effective_n_jobs

    if backend is None:  # joblib's active configuration (joblib.parallel_config)
        from joblib.parallel import get_active_backend

        active, config_n_jobs = get_active_backend()
        n_jobs = n_jobs if n_jobs is not None else (config_n_jobs if config_n_jobs is not None else 1)
        return max(1, int(active.effective_n_jobs(n_jobs)))
    n_workers = effective_n_jobs(n_jobs)
    if backend == "dask" and n_workers > 1:
        try:
            from distributed import get_client

            get_client()
        except (ImportError, ValueError) as exc:
            raise DataError(
                "backend='dask' runs on the current Dask client: create one first "
                "(from dask.distributed import Client; client = Client(...))."
            ) from exc
    return n_workers


def _parallel_results(job: _Job, tasks: list[list[np.ndarray]], n_workers: int, backend: str | None):
    """Yield every chunk's result, running the tasks with joblib.

    BLAS is limited to one thread in this process for the whole run (set
    here, once: per-task limits would race between threads): the products
    are small, one thread per worker is fastest and does not oversubscribe.
    Process workers (loky, Dask) get one BLAS thread per worker from joblib
    and Dask themselves.
    """
    import contextlib

    import joblib

    from neuroenc._kernels.parallel import single_threaded_blas

    with single_threaded_blas():
        if n_workers == 1 or len(tasks) == 1:
            for chunks in tasks:
                yield from _run_block(job, chunks)
            return
        if backend is None:
            config = contextlib.nullcontext()
            parallel = joblib.Parallel(n_jobs=n_workers, return_as="generator_unordered")
        else:
            options = {"scatter": [job]} if backend == "dask" else {}  # send the inputs to the workers once
            config = joblib.parallel_config(backend=_JOBLIB_NAMES[backend], n_jobs=n_workers, **options)
            parallel = joblib.Parallel(return_as="generator_unordered")
        with config:
            for block in parallel(joblib.delayed(_run_block)(job, chunks) for chunks in tasks):
                yield from block


# ----------------------------------------------------------------------
# public entry points
def searchlight(
    data: BrainData | np.ndarray,
    neighbourhoods: Neighbourhoods,
    models: Any = None,
    *,
    method: str = "correlation",
    comparison: str = "spearman",
    conditions: Any = None,
    folds: Any = None,
    noise: Any = None,
    noise_method: str = "shrinkage_diag",
    noise_dof: float | None = None,
    remove_mean: bool = False,
    return_rdms: bool = False,
    n_jobs: int | None = None,
    backend: str | None = "threads",
    chunk_size: int | None = None,
) -> SearchlightResult:
    """RDMs of every neighbourhood of the data, compared with model RDMs.

    Parameters
    ----------
    data : BrainData or array-like, shape (n_obs, n_features) or (n_obs, n_channels, n_times)
        Observations; a time axis is flattened (feature ``c * n_times + t``,
        as :class:`~neuroenc.rsa.neighbourhoods.SensorTimeNeighbourhoods`
        numbers them).
    neighbourhoods : Neighbourhoods
        Centres and their features, e.g.
        :class:`~neuroenc.rsa.neighbourhoods.VolumeNeighbourhoods`.
    models : RDMs, list of RDMs or array-like, optional
        Model RDMs over the data's conditions. With condition labels they are
        reordered to the data's (sorted) conditions; without, they must
        already follow that order. None: only compute the RDMs (then
        ``return_rdms`` is implied).
    method : str
        Dissimilarity (see :func:`~neuroenc.rsa.compute.compute_rdm`):
        ``"correlation"``, ``"euclidean"``, ``"sqeuclidean"``, ``"cosine"``,
        ``"mahalanobis"``, ``"crossnobis"``, ``"poisson"``, ``"poisson_cv"``.
    comparison : str
        RDM comparison of :func:`~neuroenc.rsa.comparisons.compare` (e.g.
        ``"spearman"``, ``"pearson"``/``"corr"``, ``"cosine"``,
        ``"kendall_tau_a"``, ``"cosine_cov"``).
    conditions : str or sequence, optional
        Condition of each observation (default: a BrainData's ``condition``
        column); the RDM rows follow the sorted labels.
    folds : str or sequence, optional
        Cross-validation folds (``crossnobis``, ``poisson_cv``): labels or an
        ``obs`` column; default as :func:`~neuroenc.rsa.compute.compute_rdm`
        (the ``run`` column, else the k-th repetition of each condition).
    noise : None, str or array-like, optional
        Noise normalisation of ``mahalanobis``/``crossnobis``, estimated
        within each searchlight:

        - an estimator name (``"shrinkage_diag"``, ``"shrinkage_eye"``,
          ``"diag"``, ``"full"``): from the residuals of the observations
          about their condition means, as ``compute_rdm(noise=<name>)`` on the
          searchlight's features (``dof = n_obs - n_conditions``);
        - residuals ``(n_residuals, n_features)`` (e.g. of a first-level GLM,
          or a BrainData of them): ``prec_from_residuals(residuals[:, sphere],
          dof=noise_dof, method=noise_method)`` per searchlight.
    noise_method : str
        Estimator for residual arrays (see :mod:`neuroenc.rsa.noise`).
    noise_dof : float, optional
        Degrees of freedom of the noise estimate (default: as described above,
        ``n_residuals - 1`` for residual arrays).
    remove_mean : bool
        Subtract each pattern's mean over the searchlight's features.
    return_rdms : bool
        Keep every searchlight's RDM (memory ``n_centres x n_pairs``).
    n_jobs : int or None
        Parallel workers (None or -1: all cores).
    backend : {"threads", "loky", "dask"} or None
        joblib backend: threads (default, no copies of the data), loky
        processes, or the current Dask client (``dask.distributed``), to
        which the inputs are scattered once. None uses joblib's active
        configuration (``with joblib.parallel_config(...)``), whose
        ``n_jobs`` applies when ``n_jobs`` is None.
    chunk_size : int, optional
        Centres per chunk; default: about 16 MB of gathered patterns and
        residuals (the temporaries of a chunk take a few times that).

    Returns
    -------
    SearchlightResult
        ``scores`` (n_models, n_centres); ``rdms`` if asked for.

    Raises
    ------
    UnknownNameError
        Unknown method, comparison, noise estimator or backend.
    ShapeError, LabelError, NonFiniteError, DataError
        Wrong shapes, labels or models, NaN/Inf in the data or residuals, a
        condition missing from a fold, noise for a method that does not use it.
    """
    from neuroenc.rsa.comparisons import canonical_method
    from neuroenc.rsa.compute import CROSS_VALIDATED_METHODS, METHODS, condition_means
    from neuroenc.rsa.noise import observations
    from neuroenc.rsa.rdms import RDMs

    method = check_choice(method, METHODS, "RDM method")
    comparison = canonical_method(comparison) if models is not None else None
    if backend is not None:
        backend = check_choice(backend, BACKENDS, "searchlight backend")
    n_workers = _n_workers(backend, n_jobs)
    if not isinstance(neighbourhoods, Neighbourhoods):
        raise ShapeError(f"neighbourhoods must be a Neighbourhoods object, got {type(neighbourhoods).__name__}.")
    X, labels = observations(data, conditions)
    X = X.reshape(X.shape[0], -1)
    if X.shape[1] != neighbourhoods.n_features:
        raise ShapeError(f"data have {X.shape[1]} features, the neighbourhoods index {neighbourhoods.n_features}.")
    cv = method in CROSS_VALIDATED_METHODS
    fold_labels = _fold_labels(data, folds, X.shape[0], labels) if cv else None
    if isinstance(fold_labels, str):
        if not hasattr(data, "obs"):
            raise LabelError(f"folds={fold_labels!r} names a column, but the data are an array.")
        check_names([fold_labels], data.obs.columns, "obs column")
        fold_labels = data.obs[fold_labels].to_numpy()
    if fold_labels is not None:
        check_length(X.shape[0], fold_labels, "folds")
        if len(np.unique(fold_labels)) < 2:
            raise LabelError(f"{method} is cross-validated and needs observations from at least 2 folds (e.g. runs).")
    cm = condition_means(X, labels, fold_labels, n_jobs=n_jobs)
    if len(cm.conditions) < 2:
        raise ShapeError(f"An RDM needs at least 2 conditions; the data have {len(cm.conditions)}.")
    model_vectors, model_names = _model_vectors(models, cm.conditions)
    residuals_t, noise_est, dof = _noise_inputs(noise, noise_method, noise_dof, method, X, labels)
    if method in ("poisson", "poisson_cv") and remove_mean:
        raise DataError("remove_mean would make Poisson rates negative; it is not available for Poisson methods.")

    means = cm.means if cv else cm.means[0]
    keep_rdms = return_rdms or models is None
    job = _Job(
        means,
        cm.counts if cv else None,
        residuals_t,
        noise_est,
        dof,
        neighbourhoods,
        method,
        model_vectors,
        comparison,
        remove_mean,
        keep_rdms,
    )
    conditions = cm.conditions
    del X, residuals_t, means, cm  # the job holds feature-major copies
    n_res = 0 if job.residuals_t is None else job.residuals_t.shape[1]
    chunk = _chunk_size(chunk_size, neighbourhoods, job.means_t.shape[1], n_res)
    tasks = _tasks(neighbourhoods.sizes, chunk, n_workers)

    n_models = 0 if model_vectors is None else len(model_vectors)
    n_cond = len(conditions)
    scores = np.full((n_models, neighbourhoods.n_centres), np.nan)
    vectors = np.full((neighbourhoods.n_centres, n_cond * (n_cond - 1) // 2), np.nan) if keep_rdms else None
    for centres, chunk_scores, chunk_vectors in _parallel_results(job, tasks, n_workers, backend):
        if chunk_scores is not None:
            scores[:, centres] = chunk_scores.T
        if vectors is not None:
            vectors[centres] = chunk_vectors
    rdms = None
    if vectors is not None:
        rdms = RDMs(vectors, conditions, method, neighbourhoods.centre_table())
    return SearchlightResult(scores, model_names, neighbourhoods, method, comparison, conditions, rdms)


def volume_searchlight(
    data: BrainData | np.ndarray,
    models: Any = None,
    *,
    radius: float,
    mask: Any = None,
    affine: Any = None,
    threshold: float = 0.0,
    **kwargs: Any,
) -> SearchlightResult:
    """Searchlight over the voxels of a brain mask, with spheres of ``radius`` mm.

    Parameters
    ----------
    data : BrainData or array-like, shape (n_obs, n_voxels)
        fMRI patterns (e.g. GLM estimates per condition and run). A BrainData
        carries its mask and affine (as :func:`neuroenc.io.read_fmri` makes
        them); an array needs ``mask`` (its True voxels, in C order, are the
        columns) and ``affine``.
    models : RDMs, list of RDMs or array-like, optional
        Model RDMs (see :func:`searchlight`).
    radius : float
        Sphere radius in mm: voxels whose centres are closer than ``radius``
        to the centre voxel's (in the affine's world coordinates, so
        anisotropic voxels give ellipsoids of voxels). A voxel exactly at
        ``radius`` is outside, as in rsatoolbox's ``get_volume_searchlight``
        (its radius in voxels equals ``radius / voxel size`` here).
    mask : array-like of bool (nx, ny, nz), nibabel image or path, optional
        Mask for array data.
    affine : array-like, shape (4, 4), optional
        Voxel-to-mm transform for array data (taken from ``mask`` when it is
        an image).
    threshold : float
        Centres are the mask voxels whose sphere has at least this fraction of
        its (in-image) voxels in the mask; spheres are truncated to the mask.
    **kwargs
        ``method``, ``comparison``, ``conditions``, ``folds``, ``noise``,
        ``n_jobs``, ``backend``, ... as :func:`searchlight`.

    Returns
    -------
    SearchlightResult
        ``to_nifti()`` gives one volume per model with the mask's affine.
    """
    if hasattr(data, "modality") and hasattr(data, "obs"):
        if mask is not None or affine is not None:
            raise ShapeError("A BrainData carries its own mask and affine; mask= and affine= are for arrays.")
        if data.mask is None or data.affine is None:
            raise ModalityError(
                "volume_searchlight needs voxel features with a mask and affine (e.g. from neuroenc.io.read_fmri)."
            )
        if data.data.ndim != 2:
            raise ShapeError("volume_searchlight takes (n_obs, n_voxels) data without a time axis.")
        mask, affine = data.mask, data.affine
    elif mask is None:
        raise ShapeError("Array data need mask= (and affine=) to place their voxels.")
    nb = VolumeNeighbourhoods(mask, affine, radius=radius, threshold=threshold)
    return searchlight(data, nb, models, **kwargs)


def sensor_searchlight(
    data: BrainData | mne.Epochs | np.ndarray,
    models: Any = None,
    *,
    time_radius: float = 0.0,
    time_step: int = 1,
    adjacency: Any = None,
    info: mne.Info | None = None,
    ch_type: str | None = None,
    times: Any = None,
    **kwargs: Any,
) -> SearchlightResult:
    """Searchlight over sensors and time: each channel with its neighbours, in a window around each time.

    Parameters
    ----------
    data : BrainData, mne.Epochs or array-like, shape (n_obs, n_channels, n_times)
        Epochs. A BrainData or Epochs gives its times, channel names and
        ``info``; for an ``mne.Epochs`` the conditions default to its event
        names.
    models : RDMs, list of RDMs or array-like, optional
        Model RDMs (see :func:`searchlight`).
    time_radius : float
        Half-width of the time window in seconds: samples within
        ``time_radius`` of the centre sample (0: one sample). Only centres
        whose whole window lies in the epoch are used.
    time_step : int
        Samples between consecutive centre times. Centre times fall on every
        ``time_step``-th sample counted from time 0 (e.g. 0, 0.1, 0.2 s at
        160 Hz with ``time_step=16``), as the samples of an MNE object with
        ``sfreq / time_step``.
    adjacency : array-like or scipy sparse matrix, shape (n_channels, n_channels), optional
        Channel adjacency; default: :func:`mne.channels.find_ch_adjacency` on
        the data's ``info`` (which needs channel positions, e.g. a montage).
        A channel is always its own neighbour.
    info : mne.Info, optional
        Measurement info for array data (channel positions for the default
        adjacency and for :meth:`SearchlightResult.to_evoked`).
    ch_type : str, optional
        Channel type for MNE's adjacency when ``info`` has several.
    times : array-like, optional
        Sample times (s) of array data; default ``info['sfreq']`` from 0, or
        sample indices without ``info``.
    **kwargs
        ``method``, ``comparison``, ``conditions``, ``folds``, ``noise``,
        ``n_jobs``, ``backend``, ... as :func:`searchlight`.

    Returns
    -------
    SearchlightResult
        ``maps`` (n_models, n_channels, n_centre_times); ``to_braindata()``
        and ``to_evoked(model)`` carry channel names and centre times.
    """
    modality = "eeg"
    if hasattr(data, "get_data") and hasattr(data, "info") and hasattr(data, "events"):  # mne.Epochs
        if "conditions" not in kwargs:
            codes = {v: k for k, v in data.event_id.items()}
            kwargs["conditions"] = np.array([codes[c] for c in data.events[:, 2]])
        info, times, modality = data.info, data.times, _modality_of(data.info)
        data = data.get_data()
    elif hasattr(data, "modality") and hasattr(data, "obs"):
        if data.data.ndim != 3:
            raise ShapeError("sensor_searchlight needs epochs with a time axis (n_obs, n_channels, n_times).")
        if info is None:
            info = data.info
        times, modality = data.times, data.modality
    arr = data.data if hasattr(data, "obs") else check_array(data, "data", ndim=3)
    if arr.ndim != 3:
        raise ShapeError("sensor_searchlight needs epochs (n_obs, n_channels, n_times).")
    n_channels, n_times = arr.shape[1:]
    if info is not None and len(info["ch_names"]) != n_channels:
        raise LabelError(f"info has {len(info['ch_names'])} channels, the data {n_channels}.")
    if times is None:
        sfreq = float(info["sfreq"]) if info is not None else 1.0
        times = np.arange(n_times) / sfreq
    times = check_array(times, "times", ndim=1, dtype=np.float64)
    check_length(n_times, times, "times", of="time samples in data")
    if n_times > 1 and np.any(np.diff(times) <= 0):
        raise ShapeError("times must be strictly increasing.")
    period = float(np.median(np.diff(times))) if n_times > 1 else 1.0
    radius = float(time_radius)
    if not np.isfinite(radius) or radius < 0:
        raise ShapeError(f"time_radius must be finite and >= 0, got {time_radius!r}.")
    half_window = int(np.floor(radius / period + 1e-9))
    if adjacency is None:
        if info is None:
            raise ShapeError("Pass adjacency= or an mne.Info (info=) with channel positions.")
        adjacency = adjacency_from_info(info, ch_type)
    # centre times on the grid of every time_step-th sample counted from time 0 (e.g. 0, 0.1, 0.2 s), so
    # that they are the samples of an MNE object with sfreq / time_step
    first = int(round(times[0] / period))
    start = half_window
    if isinstance(time_step, (int, np.integer)) and time_step > 1:
        start += (-(first + half_window)) % int(time_step)
        if start > n_times - 1 - half_window:
            start = half_window
    nb = SensorTimeNeighbourhoods(adjacency, n_times, half_window=half_window, step=time_step, start=start)
    if nb.n_channels != n_channels:
        raise ShapeError(f"adjacency is for {nb.n_channels} channels, the data have {n_channels}.")
    result = searchlight(data, nb, models, **kwargs)
    if info is not None:
        result.ch_names = list(info["ch_names"])
    elif hasattr(data, "feature_names"):
        result.ch_names = data.feature_names
    else:
        result.ch_names = [f"ch{i}" for i in range(n_channels)]
    result.times = times[nb.centre_samples]
    result.info = info
    result.modality = modality
    if result.rdms is not None:
        meta = result.rdms.metadata
        meta["ch_name"] = np.asarray(result.ch_names)[meta["channel"].to_numpy()]
        meta["time"] = times[meta["sample"].to_numpy()]
    return result


def _modality_of(info: mne.Info) -> str:
    types = set(info.get_channel_types())
    if types & {"mag", "grad"}:
        return "meg"
    if types & {"seeg", "ecog", "dbs"}:
        return "ieeg"
    return "eeg"
