"""Load the Haxby fMRI subject as volumes and as per-run GLM betas."""

import numpy as np

from neuroenc.datapath import data_path
from neuroenc.io import read_fmri

folder = data_path("haxby")
labels, runs = np.loadtxt(folder / "attributes_literal.txt", dtype=str).T

volumes = read_fmri(
    folder / "bold.nii.gz",
    labels=labels,
    runs=runs.astype(int),
    mask=folder / "mask.nii.gz",
    standardize=True,  # z-score every voxel within each run
    hrf_shift=5.0,  # label each volume by the stimulus 5 s (2 TRs) earlier
)
print(volumes)
faces = volumes.select("condition == 'face' and run < 6")
print(faces.shape)

betas = read_fmri(
    folder / "bold.nii.gz",
    labels=labels,
    runs=runs.astype(int),
    mask=folder / "mask.nii.gz",
    mode="betas",  # one nilearn first-level GLM per run, one map per category
)
print(betas)
print(betas.obs.head())

# Put the mean face beta back into the brain volume.
img = betas.to_nifti(betas.select(condition="face").data.mean(axis=0))
print(img.shape)
