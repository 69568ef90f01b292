"""RDMs of the 8 object categories of Haxby et al. (2001), subject 1.

One GLM estimate per category and run (12 runs, 530 ventral-temporal
voxels). Two RDMs: the correlation distance of the category means, and the
crossnobis distance cross-validated over runs with multivariate noise
normalisation (noise covariance of the residuals, shrunk towards its
diagonal).
"""

import numpy as np
from scipy.stats import spearmanr

from neuroenc.datasets import load_haxby
from neuroenc.rsa.compute import compute_rdm

betas = load_haxby("betas")
print(betas)

correlation = compute_rdm(betas, "correlation")
crossnobis = compute_rdm(betas, "crossnobis", noise="shrinkage_diag")  # folds: the run column
print(crossnobis)
print(crossnobis.metadata.to_string(index=False))


def show(rdms, digits):
    names = [str(c)[:8] for c in rdms.conditions]
    print(" " * 9 + " ".join(f"{n:>8}" for n in names))
    for name, row in zip(names, rdms.matrices[0]):
        print(f"{name:>8} " + " ".join(f"{v:8.{digits}f}" for v in row))


print("\ncorrelation distance (1 - r) of the category means")
show(correlation, 3)
print("\ncrossnobis (squared Mahalanobis per voxel, cross-validated over 12 runs)")
show(crossnobis, 3)

vec = crossnobis.vectors[0]
pairs = [(a, b) for i, a in enumerate(crossnobis.conditions) for b in crossnobis.conditions[i + 1 :]]
order = np.argsort(vec)
print(f"\nmost similar pair:    {pairs[order[0]][0]} - {pairs[order[0]][1]} ({vec[order[0]]:.3f})")
print(f"most dissimilar pair: {pairs[order[-1]][0]} - {pairs[order[-1]][1]} ({vec[order[-1]]:.3f})")
print(f"negative crossnobis estimates: {int((vec < 0).sum())} of {len(vec)}")
rho = spearmanr(correlation.vectors[0], vec).statistic
print(f"Spearman correlation between the two RDMs: {rho:.3f}")
