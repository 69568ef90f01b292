"""Topological RSA transforms against rsatoolbox 0.3.2 in the same run.

Run: ``python benchmarks/bench_rsa_topology.py``. Inputs: Euclidean RDMs of
random patterns (20 channels); the geodesic transform is timed on the raw
RDMs and on geo-topological RDMs (l, u = 0.1, 0.9 quantiles), in rsatoolbox's
convention (``zero_edges=False``, the same numbers; neuroenc's default
``zero_edges=True`` costs the same). Medians of 5 runs after one warm-up
(which also compiles the kernel); ratio = rsatoolbox time / neuroenc time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.spatial.distance import pdist

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_time, print_table  # noqa: E402
from rsatoolbox.rdm import RDMs as RsaRDMs  # noqa: E402
from rsatoolbox.rdm import geodesic_transform, geotopological_transform  # noqa: E402

from neuroenc.rsa.topology import geodesic, geotopological  # noqa: E402


def random_rdms(n_rdms: int, n_conditions: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([pdist(rng.standard_normal((n_conditions, 20))) for _ in range(n_rdms)])


def fresh(vectors: np.ndarray):
    """rsatoolbox transforms modify their input in place: time them on a copy each run."""
    return lambda: RsaRDMs(vectors.copy())


def rows_for(n_rdms: int, n_cond: int) -> list[tuple[str, float, float, str]]:
    V = random_rdms(n_rdms, n_cond)
    gt = geotopological(V, 0.1, 0.9, per_rdm=False)
    make, make_gt = fresh(V), fresh(gt)
    # same numbers, checked before timing
    ref = geodesic_transform(make()).get_vectors()
    assert np.abs(geodesic(V, zero_edges=False) - ref).max() <= 1e-8 * np.abs(ref).max()
    label = f"{n_rdms} RDMs x {n_cond} cond"
    geo = "rsatoolbox geodesic_transform"
    rsa_geo = median_time(lambda: geodesic_transform(make()))
    rsa_geo_gt = median_time(lambda: geodesic_transform(make_gt()))
    return [
        (f"geodesic, {label}", median_time(lambda: geodesic(V, zero_edges=False)), rsa_geo, geo),
        (f"geodesic of GT, {label}", median_time(lambda: geodesic(gt, zero_edges=False)), rsa_geo_gt, geo),
        (
            f"geodesic of GT 1 thread, {label}",
            median_time(lambda: geodesic(gt, zero_edges=False, n_jobs=1)),
            rsa_geo_gt,
            geo,
        ),
        (
            f"geotopological pooled, {label}",
            median_time(lambda: geotopological(V, 0.1, 0.9, per_rdm=False)),
            median_time(lambda: geotopological_transform(make(), 0.1, 0.9)),
            "rsatoolbox geotopological_transform",
        ),
    ]


def main() -> None:
    rows = []
    for n_rdms, n_cond in ((20, 100), (100, 100), (20, 200)):
        rows += rows_for(n_rdms, n_cond)
    print_table(rows)


if __name__ == "__main__":
    main()
