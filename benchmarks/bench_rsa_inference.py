"""Bootstrap model evaluation: neuroenc against rsatoolbox 0.3.2 in the same run, on the same inputs.

Case (the target of the RSA-engine issue): 5 model RDMs, 20 subjects' RDMs,
60 conditions (1770 pairs), Spearman correlation, bootstrap over conditions
(``eval_bootstrap_pattern`` / ``evaluate(bootstrap="pattern")``) with the noise
ceiling of every bootstrap sample. Both libraries draw the same samples (same
seed of numpy's legacy generator); the script checks that their evaluations
and ceilings agree before timing.

Data: subject RDMs are Euclidean distances of noisy 60 x 30 patterns sharing
a common structure; 3 models are continuous (noisier versions of it), 2 are
categorical (2 and 6 levels: many tied dissimilarities).

rsatoolbox runs once at N = 200 (about half a minute); neuroenc is timed at
N = 200 and N = 1000 (median of repeated runs, all cores), plus the CPU time
of one thread (``n_jobs=1``), which other processes on a shared machine do not
inflate. Ratio: rsatoolbox time / neuroenc time (above 1: neuroenc faster).

Run: ``python benchmarks/bench_rsa_inference.py [--quick]`` (``--quick``
skips rsatoolbox).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial.distance import pdist

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_time, print_table  # noqa: E402

from neuroenc.rsa.inference import evaluate  # noqa: E402
from neuroenc.rsa.rdms import RDMs  # noqa: E402

os.environ.setdefault("TQDM_DISABLE", "1")  # rsatoolbox's progress bars
QUICK = "--quick" in sys.argv
N_COND, N_SUBJ, N_FEAT = 60, 20, 30


def make_case(seed: int = 0) -> tuple[RDMs, RDMs]:
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((N_COND, N_FEAT))
    data = np.stack([pdist(base + rng.standard_normal((N_COND, N_FEAT))) for _ in range(N_SUBJ)])
    truth = pdist(base)
    models = [pdist(base + s * rng.standard_normal((N_COND, N_FEAT))) for s in (0.5, 1.0, 2.0)]
    for levels in (2, 6):
        cats = rng.integers(0, levels, N_COND)
        models.append(pdist(cats[:, None], "hamming") * rng.random() + (truth > np.median(truth)) * 0.1)
    return RDMs(np.stack(models), metadata={"model": ["m0.5", "m1", "m2", "cat2", "cat6"]}), RDMs(data)


def run_rsatoolbox(models: RDMs, data: RDMs, n: int, seed: int):
    import rsatoolbox
    from rsatoolbox.inference import eval_bootstrap_pattern
    from rsatoolbox.model import ModelFixed

    rmodels = [
        ModelFixed(str(name), rsatoolbox.rdm.RDMs(v[None])) for name, v in zip(models.metadata["model"], models.vectors)
    ]
    rdata = data.to_rsatoolbox()
    np.random.seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        result = eval_bootstrap_pattern(rmodels, rdata, method="spearman", N=n)
        return time.perf_counter() - t0, result


def main() -> None:
    models, data = make_case()
    seed = 1
    # compile and warm up the kernels
    evaluate(models, data, "spearman", bootstrap="pattern", n_bootstrap=4, random_state=seed)
    rows = []
    ref_200 = None
    if not QUICK:
        ref_200, ref = run_rsatoolbox(models, data, 200, seed)
        ours = evaluate(models, data, "spearman", bootstrap="pattern", n_bootstrap=200, random_state=seed)
        diff = max(
            np.nanmax(np.abs(ours.scores - ref.evaluations) / np.abs(ref.evaluations)),
            np.nanmax(np.abs(ours.ceilings - ref.noise_ceiling.T) / np.abs(ref.noise_ceiling.T)),
        )
        print(f"max relative difference to rsatoolbox (200 samples): {diff:.1e}")
        assert diff < 1e-8
    for n in (200, 1000):
        wall = median_time(
            lambda n=n: evaluate(models, data, "spearman", bootstrap="pattern", n_bootstrap=n, random_state=seed),
            repeat=3,
        )
        rows.append((f"pattern bootstrap N={n}, spearman (wall)", wall, ref_200 if n == 200 else None, "rsatoolbox"))

    def cpu(n: int) -> float:
        t0 = time.thread_time()
        evaluate(models, data, "spearman", bootstrap="pattern", n_bootstrap=n, random_state=seed, n_jobs=1)
        return time.thread_time() - t0

    for n in (200, 1000):
        rows.append((f"pattern bootstrap N={n}, 1 thread (CPU s)", min(cpu(n) for _ in range(3)), None, ""))
    for kind, method in (("rdm", "spearman"), ("both", "spearman"), ("pattern", "pearson"), ("both", "kendall_tau_a")):
        n = 1000 if method != "kendall_tau_a" else 100
        wall = median_time(
            lambda kind=kind, method=method, n=n: evaluate(
                models, data, method, bootstrap=kind, n_bootstrap=n, random_state=seed
            ),
            repeat=3,
        )
        rows.append((f"{kind} bootstrap N={n}, {method} (wall)", wall, None, ""))
    print(f"{N_COND} conditions, {N_SUBJ} subject RDMs, {len(models)} models; noise ceiling per sample")
    print_table(rows)


if __name__ == "__main__":
    main()
