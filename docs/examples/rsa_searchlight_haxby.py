"""Searchlight RSA on Haxby et al. (2001): where does ventral temporal cortex separate the categories?

Subject 1, 530 voxels of one axial slice (3.1 x 3.75 x 3.75 mm), one GLM
estimate per category and run (8 categories x 12 runs). In a sphere of 8 mm
around every voxel: crossnobis RDMs (leave-one-run-out, noise covariance
estimated in each sphere with Schaefer-Strimmer shrinkage), compared by
Pearson correlation with four model RDMs, each setting a group of categories
apart from the rest. The maps are saved as one NIfTI image (a volume per
model) in the mask's space.
"""

import numpy as np

from neuroenc.datasets import load_haxby
from neuroenc.rsa.rdms import RDMs
from neuroenc.rsa.searchlights import volume_searchlight

betas = load_haxby("betas")
print(betas)

conditions = np.unique(betas.conditions)  # the RDM rows: sorted labels


def binary_model(group):
    """1 between a condition in ``group`` and one outside it, 0 otherwise."""
    inside = np.isin(conditions, group)
    return (inside[:, None] != inside[None, :]).astype(float)


models = RDMs(
    np.stack([binary_model(g) for g in (["face", "cat"], ["face"], ["house"], ["scrambledpix"])]),
    conditions=conditions,
    metadata={"name": ["animate", "face", "house", "scrambled"]},
)

result = volume_searchlight(
    betas,
    models,
    radius=8.0,
    method="crossnobis",
    noise="shrinkage_diag",
    comparison="pearson",
    return_rdms=True,
)
nb = result.neighbourhoods
print(result)
sizes = nb.sizes
print(f"sphere sizes: {sizes.min()} to {sizes.max()} voxels (median {np.median(sizes):.0f})")

# crossnobis estimates squared distances without bias: positive means the patterns differ
mean_rdm = result.rdms.vectors.mean(axis=0)
pairs = [(a, b) for i, a in enumerate(conditions) for b in conditions[i + 1 :]]
order = np.argsort(mean_rdm)
print("most similar pairs:", ", ".join(f"{pairs[k][0]}-{pairs[k][1]} {mean_rdm[k]:.3f}" for k in order[:3]))
print("most distinct pairs:", ", ".join(f"{pairs[k][0]}-{pairs[k][1]} {mean_rdm[k]:.3f}" for k in order[::-1][:3]))

print(f"{'model':<10} {'mean r':>7} {'max r':>7} {'r > 0.5':>8}  best sphere centre (voxel, mm)")
for name, scores in zip(result.model_names, result.scores):
    best = int(np.argmax(scores))
    ijk = nb.centre_ijk[best]
    mm = nb.affine[:3, :3] @ ijk + nb.affine[:3, 3]
    print(
        f"{name:<10} {scores.mean():7.3f} {scores.max():7.3f} {np.mean(scores > 0.5):8.1%}  "
        f"{tuple(int(v) for v in ijk)}, ({mm[0]:.1f}, {mm[1]:.1f}, {mm[2]:.1f})"
    )

img = result.to_nifti()
img.to_filename("haxby_searchlight.nii.gz")
same = np.allclose(img.affine, betas.affine)
print(f"saved haxby_searchlight.nii.gz: shape {img.shape}, the mask's affine: {same}")
