"""Volumetric searchlight RSA: neuroenc against rsatoolbox 0.3.2 on synthetic fMRI estimates.

Run: ``python benchmarks/bench_searchlight.py`` (full size: a 50,000-voxel
mask of 3 mm voxels, 3-voxel (9 mm) spheres, 40 conditions x 6 runs, 2
workers) or ``--quick`` (about 4,000 voxels, 20 conditions x 4 runs).

Cases

1. crossnobis with multivariate noise normalisation (Schaefer-Strimmer
   shrinkage of the residual covariance, estimated in every sphere), scored
   against one model RDM: the whole mask, in a fresh process, so that its
   peak resident memory (``ru_maxrss``, data included) is that of the job.
   rsatoolbox has no noise-normalised searchlight; its closest path,
   ``prec_from_measurements`` and ``calc_rdm(method="crossnobis",
   noise=...)`` per sphere, is timed on a subset of centres and
   extrapolated to the whole mask (labelled ``extrap.``).
2. rsatoolbox's own searchlight pipeline, ``get_volume_searchlight`` +
   ``get_searchlight_RDMs`` (correlation distance) +
   ``evaluate_models_searchlight`` (``eval_fixed``, Pearson), against the
   same job in neuroenc (identical numbers), on a subset of centres
   (rsatoolbox's sphere search on the whole mask is timed separately).

Times are medians of 3 runs (1 run for the whole-mask job and the
extrapolated rsatoolbox cases); ratio = rsatoolbox / neuroenc.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial.distance import pdist

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_time, print_table  # noqa: E402

FULL = {"n_voxels": 50_000, "n_cond": 40, "n_runs": 6, "subset": 200}
QUICK = {"n_voxels": 4_000, "n_cond": 20, "n_runs": 4, "subset": 50}
VOXEL_MM = 3.0
RADIUS_VOXELS = 3


def synthetic(n_voxels: int, n_cond: int, n_runs: int, seed: int = 0):
    """Ellipsoid mask of about ``n_voxels`` 3 mm voxels, and run-wise condition estimates.

    Returns ``(mask, affine, X, conditions, runs, model)``: ``X`` is
    ``(n_cond * n_runs, n_mask_voxels)`` with condition effects, a run
    offset and spatially independent noise; ``model`` is the true RDM of the
    effects (squared Euclidean distances).
    """
    rng = np.random.default_rng(seed)
    axes = np.array([1.2, 1.0, 0.85])
    r = (3 * n_voxels / (4 * np.pi * axes.prod())) ** (1 / 3)
    half = np.ceil(r * axes).astype(int) + 2
    grid = np.indices(tuple(2 * half + 1)).reshape(3, -1).T - half
    mask = (((grid / (r * axes)) ** 2).sum(1) < 1).reshape(tuple(2 * half + 1))
    affine = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    n_vox = int(mask.sum())
    effects = rng.standard_normal((n_cond, 3)) @ rng.standard_normal((3, n_vox))
    conditions = np.tile(np.arange(n_cond), n_runs)
    runs = np.repeat(np.arange(n_runs), n_cond)
    offsets = 0.5 * rng.standard_normal((n_runs, n_vox))
    X = rng.standard_normal((len(runs), n_vox))
    for row, (c, r) in enumerate(zip(conditions, runs)):  # row by row: no data-sized temporaries
        X[row] += effects[c] + offsets[r]
    model = pdist(effects, "sqeuclidean") / n_vox
    return mask, affine, X, conditions, runs, model


def _whole_mask_job(size: dict, n_jobs: int) -> dict:
    """Run in a fresh interpreter: the noise-normalised crossnobis searchlight over the whole mask."""
    code = f"""
import json, resource, time
import numpy as np
sys_path = {str(Path(__file__).parent)!r}
import sys; sys.path.insert(0, sys_path)
from bench_searchlight import synthetic
from neuroenc.rsa.searchlights import volume_searchlight
mask, affine, X, cond, runs, model = synthetic({size["n_voxels"]}, {size["n_cond"]}, {size["n_runs"]})
kw = dict(radius={RADIUS_VOXELS * VOXEL_MM}, mask=mask, affine=affine, conditions=cond, folds=runs,
          method="crossnobis", noise="shrinkage_diag", comparison="pearson", n_jobs={n_jobs})
small = np.zeros_like(mask); mid = mask.shape[2] // 2; small[:, :, mid : mid + 2] = mask[:, :, mid : mid + 2]
volume_searchlight(X[:, small[mask]], model, **{{**kw, "mask": small}})  # compile the kernels
import gc; gc.collect()
before_mb = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 2**20
t0 = time.perf_counter()
res = volume_searchlight(X, model, **kw)
wall = time.perf_counter() - t0
print(json.dumps({{"wall": wall, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "before_mb": before_mb, "data_mb": X.nbytes / 2**20,
                  "n_centres": res.neighbourhoods.n_centres, "n_voxels": int(mask.sum()),
                  "mean_size": float(res.neighbourhoods.sizes.mean()),
                  "mean_score": float(np.nanmean(res.scores))}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _rsatoolbox_noise_crossnobis(X, cond, runs, mask, centres, members):
    """rsatoolbox's closest path: per-sphere noise precision, then calc_rdm crossnobis with it."""
    from rsatoolbox.data import Dataset
    from rsatoolbox.data.noise import prec_from_measurements
    from rsatoolbox.rdm import calc_rdm

    out = []
    for c in centres:
        ds = Dataset(X[:, members[c]], obs_descriptors={"conds": cond, "runs": runs})
        prec = prec_from_measurements(ds, obs_desc="conds", method="shrinkage_diag")
        out.append(
            calc_rdm(ds, method="crossnobis", descriptor="conds", cv_descriptor="runs", noise=prec).dissimilarities
        )
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small problem (about 4,000 voxels)")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TQDM_DISABLE", "1")

    import contextlib
    import io

    from rsatoolbox.inference import eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs as RtRDMs
    from rsatoolbox.util.searchlight import evaluate_models_searchlight, get_searchlight_RDMs, get_volume_searchlight

    from neuroenc.rsa.neighbourhoods import VolumeNeighbourhoods
    from neuroenc.rsa.searchlights import searchlight, volume_searchlight

    mask, affine, X, cond, runs, model = synthetic(size["n_voxels"], size["n_cond"], size["n_runs"])
    n_vox = int(mask.sum())
    radius_mm = RADIUS_VOXELS * VOXEL_MM
    print(
        f"{n_vox} voxels, {size['n_cond']} conditions x {size['n_runs']} runs, radius {RADIUS_VOXELS} voxels "
        f"({radius_mm:g} mm), {args.n_jobs} workers"
    )
    rows = []

    # 1. whole-mask noise-normalised crossnobis, fresh process
    job = _whole_mask_job(size, args.n_jobs)
    print(
        f"neuroenc whole mask: {job['n_centres']} centres (mean sphere {job['mean_size']:.1f} voxels): "
        f"{job['wall']:.1f} s, peak RSS {job['peak_mb']:.0f} MB (RSS before the call {job['before_mb']:.0f} MB, "
        f"data {job['data_mb']:.0f} MB)"
    )
    nb = VolumeNeighbourhoods(mask, affine, radius=radius_mm)
    rng = np.random.default_rng(1)
    subset = np.sort(rng.choice(nb.n_centres, size["subset"], replace=False))
    members = {int(c): nb.members_of(int(c)) for c in subset}
    t_rt = median_time(lambda: _rsatoolbox_noise_crossnobis(X, cond, runs, mask, subset, members), 1, 0)
    per_centre = t_rt / len(subset)
    rows.append(
        (
            f"crossnobis+noise, whole mask ({job['n_centres']} c.)",
            job["wall"],
            per_centre * job["n_centres"],
            f"rsatoolbox loop, extrap. from {len(subset)} centres",
        )
    )

    # 2. rsatoolbox's searchlight pipeline (correlation RDMs, eval_fixed Pearson) on a subset
    with contextlib.redirect_stdout(io.StringIO()):
        t_spheres = median_time(lambda: get_volume_searchlight(mask, radius=RADIUS_VOXELS, threshold=0.0), 1, 0)
    t_ours_spheres = median_time(lambda: VolumeNeighbourhoods(mask, affine, radius=radius_mm), 3)
    rows.append((f"sphere search, whole mask ({n_vox} vox.)", t_ours_spheres, t_spheres, "get_volume_searchlight"))

    flat = np.flatnonzero(mask.ravel())
    volume = np.zeros((X.shape[0], mask.size))
    volume[:, flat] = X
    centres_flat = flat[nb.centres[subset]]
    neighbours = [flat[members[int(c)]] for c in subset]
    rt_model = ModelFixed("model", RtRDMs(model[None]))

    def rsatoolbox_pipeline():
        with contextlib.redirect_stdout(io.StringIO()):
            sl = get_searchlight_RDMs(volume, centres_flat, neighbours, cond, method="correlation", verbose=False)
            return evaluate_models_searchlight(sl, rt_model, eval_fixed, method="corr", n_jobs=1)

    sub_nb = nb.select(subset)

    def ours_pipeline():
        return searchlight(X, sub_nb, model, conditions=cond, method="correlation", comparison="pearson", n_jobs=1)

    t_rt_pipe = median_time(rsatoolbox_pipeline, 1, 0)
    t_ours_pipe = median_time(ours_pipeline, 3)
    rows.append((f"correlation + eval_fixed, {len(subset)} centres", t_ours_pipe, t_rt_pipe, "rsatoolbox searchlight"))
    ours_whole = median_time(
        lambda: volume_searchlight(
            X,
            model,
            radius=radius_mm,
            mask=mask,
            affine=affine,
            conditions=cond,
            comparison="pearson",
            n_jobs=args.n_jobs,
        ),
        1,
    )
    rows.append(
        (
            f"correlation + pearson, whole mask ({nb.n_centres} c.)",
            ours_whole,
            t_spheres + t_rt_pipe / len(subset) * nb.n_centres,
            "rsatoolbox, extrap. (1 worker)",
        )
    )
    print_table(rows)
    print(f"command: python benchmarks/bench_searchlight.py{' --quick' if args.quick else ''} --n-jobs {args.n_jobs}")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t0:.0f} s")
