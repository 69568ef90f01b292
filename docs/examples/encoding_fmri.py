"""Encoding models of fMRI: FIR responses to events, and block-design encoding of Haxby's voxels.

1. nitime's event-related BOLD signal (one region, 3360 volumes, TR 2 s, six
   event types): a finite impulse response (FIR) model with delays of 0-18 s
   against one Glover-HRF regressor per event type, scored by held-out R2
   over 5 folds.
2. Haxby et al. (2001), subject 1: 530 ventral-temporal voxels, 12 runs of
   121 volumes (TR 2.5 s), eight object categories in blocks. The category
   blocks, convolved with the Glover HRF, predict every voxel; predictions of
   each run come from a model fit on the other runs (one ridge penalty per
   voxel, chosen by leave-one-run-out inside the training runs). Then a
   permutation test with max-statistic correction, a banded ridge
   separating "a stimulus is shown" from "which category" (variance
   partitioning), and a noise ceiling from the repeated category blocks.
"""

import numpy as np
import pandas as pd
from scipy.signal import detrend
from sklearn.model_selection import KFold

from neuroenc.datapath import data_path
from neuroenc.datasets import load_haxby
from neuroenc.encoding.banded import BandedRidgeCV
from neuroenc.encoding.hrf import hrf_design, indicator_matrix
from neuroenc.encoding.ridge import RidgeCV
from neuroenc.encoding.scoring import (
    cross_val_predict,
    noise_ceiling,
    normalize_by_ceiling,
    permutation_test,
    score_targets,
)

alphas = np.logspace(-2, 5, 15)

# --- 1. FIR model of an event-related BOLD signal --------------------------------------------
table = pd.read_csv(data_path("nitime", "event_related_fmri.csv"))
events, kinds = indicator_matrix(table["events"].to_numpy().astype(int), exclude=[0])
bold = table["bold"].to_numpy()
delays = np.arange(10)  # 0-18 s in frames of 2 s
fir = hrf_design(events, tr=2.0, model="fir", fir_delays=delays)
glover = hrf_design(events, tr=2.0, model="glover")
print(f"nitime event-related fMRI: {bold.size} volumes, event types {kinds}, FIR design {fir.shape}")
for name, X in (("FIR (10 delays)", fir), ("Glover HRF", glover)):
    pred = cross_val_predict(RidgeCV(alphas, cv=5), X, bold, cv=KFold(5))
    print(f"  {name:<16} 5-fold held-out R2 = {score_targets(bold, pred, 'r2'):.3f}")
response = RidgeCV(alphas, cv=5).fit(fir, bold).coef_.reshape(len(kinds), len(delays))
print("  FIR response peaks (s after onset):", {k: float(2 * np.argmax(r)) for k, r in zip(kinds, response)})

# --- 2. Block-design encoding of Haxby's ventral temporal voxels -----------------------------
volumes = load_haxby(mode="volumes")
runs = volumes.obs["run"].to_numpy()
blocks, categories = indicator_matrix(volumes.obs["condition"].to_numpy(), exclude=["rest"])
X = hrf_design(blocks, tr=2.5, model="glover", runs=runs)  # each run convolved on its own
Y = np.asarray(volumes.data, dtype=np.float64).copy()
for r in np.unique(runs):  # remove each run's offset and drift
    Y[runs == r] = detrend(Y[runs == r], axis=0)
print(f"\nHaxby: {Y.shape[0]} volumes x {Y.shape[1]} voxels, {len(np.unique(runs))} runs, categories {categories}")

model = RidgeCV(alphas)  # with groups: leave-one-run-out inside the training runs
pred = cross_val_predict(model, X, Y, cv=len(np.unique(runs)), groups=runs)
r = score_targets(Y, pred, "pearson")
print(
    f"  held-out r per voxel: median {np.median(r):.3f}, 90th percentile {np.percentile(r, 90):.3f}, "
    f"max {r.max():.3f}; {np.sum(r > 0.2)} voxels above 0.2"
)
fitted = model.fit(X, Y, groups=runs)
print(f"  selected alphas: {np.unique(fitted.alpha_).size} distinct, median {np.median(fitted.alpha_):.3g}")

# blocks of 11 volumes keep the autocorrelation of the predictions within each block
test = permutation_test(Y, pred, "pearson", n_permutations=500, block_size=11, random_state=0)
print(f"  permutation test: {np.sum(test.p_values_fwe < 0.05)} voxels significant at FWE 0.05 (max-statistic)")

# --- variance partitioning: any visual stimulus vs the category shown ----------------------
stimulus = hrf_design(blocks.sum(1), tr=2.5, model="glover", runs=runs)  # one "stimulus on" regressor
banded = BandedRidgeCV(alphas=alphas, n_iter=20, cv=6, random_state=0)
train, held_out = runs < 9, runs >= 9
banded.fit([stimulus[train], X[train]], Y[train], groups=runs[train])
shares = banded.score([stimulus[held_out], X[held_out]], Y[held_out], split=True)
best = np.argsort(r)[-50:]  # the 50 best-predicted voxels
print(
    f"  banded ridge on runs 0-8, R2 on runs 9-11 (50 best voxels): stimulus-on share "
    f"{np.mean(shares[0, best]):.3f}, category share {np.mean(shares[1, best]):.3f}; "
    f"median category-band weight {np.median(banded.band_weights_[1, best]):.2f}"
)

# --- noise ceiling from the repeated category blocks -----------------------------------------
# The encoding model fit on runs 0-5 predicts each voxel's response to the 8 categories (its
# coefficients); the GLM estimates of runs 6-11 are 6 repetitions of that pattern.
encoder = RidgeCV(alphas).fit(X[runs < 6], Y[runs < 6], groups=runs[runs < 6])
predicted = encoder.coef_.T  # (categories, voxels)
betas = load_haxby(mode="betas")
conditions, beta_runs = betas.obs["condition"].to_numpy(), betas.obs["run"].to_numpy()
repeats = np.stack(
    [betas.data[[np.flatnonzero((beta_runs == r) & (conditions == c))[0] for c in categories]] for r in range(6, 12)]
)
ceiling = noise_ceiling(repeats, "pearson", n_splits=100, random_state=0)
r_model = score_targets(repeats.mean(0), predicted, "pearson")
normalised = normalize_by_ceiling(r_model, ceiling)
print(
    f"  category patterns, runs 6-11 ({repeats.shape[0]} repetitions x {repeats.shape[1]} categories): "
    f"median noise ceiling {np.median(ceiling):.3f}, model r {np.median(r_model):.3f}, "
    f"ceiling-normalised {np.nanmedian(normalised):.3f} (medians over voxels)"
)
