"""Decode imagined left vs right fist movements with Riemannian classifiers.

PhysioNet EEG motor imagery, subject 1, runs 4/8/12 (45 trials), the 21
sensorimotor channels, 8-30 Hz, 0.5-3.5 s after the cue. Accuracy is
estimated by stratified 5-fold cross-validation repeated 3 times.
"""

import numpy as np
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from neuroenc.datasets import load_physionet_mi
from neuroenc.riemann import MDM, AugmentedCovariances, Covariances, TSClassifier

epochs = load_physionet_mi(subject=1, task="imagery_lr", l_freq=8.0, h_freq=30.0)
motor = [n for n in epochs.feature_names if n[:2] in ("Fc", "C1", "C2", "C3", "C4", "C5", "C6", "Cz", "Cp")]
epochs = epochs.pick_features(motor).crop(0.5, 3.5)
X, y = epochs.data, epochs.conditions
print(f"{X.shape[0]} trials x {X.shape[1]} channels x {X.shape[2]} samples; classes {sorted(set(y))}")

cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=3, random_state=42)
pipelines = {
    "MDM": make_pipeline(Covariances("oas"), MDM()),
    "TS + LR": make_pipeline(Covariances("oas"), TSClassifier()),
    # order/lag chosen by an inner grid search on each training split (nested CV)
    "augmented TS + LR": GridSearchCV(
        make_pipeline(AugmentedCovariances(estimator="oas"), TSClassifier()),
        {"augmentedcovariances__order": [1, 2, 3], "augmentedcovariances__lag": [1, 4, 8]},
        cv=3,
    ),
}
for name, pipeline in pipelines.items():
    scores = cross_val_score(pipeline, X, y, cv=cv)
    print(f"{name:<18} accuracy {np.mean(scores):.3f} +/- {np.std(scores):.3f}")
