"""Time-resolved decoding of the target side in PhysioNet EEG (subject 1).

In the motor runs of the PhysioNet EEG Motor Movement/Imagery data a target
appears on the left or the right of the screen (T1 / T2) and the subject
opens and closes (runs 3, 7, 11) or imagines moving (runs 4, 8, 12) the
fist on that side: 90 epochs, 64 channels, -0.2 to 0.8 s, baseline-corrected,
resampled to 40 Hz. No band-pass filter: a zero-phase filter would smear the
strong response at 0.3 s backwards in time, before the cue.
A shrinkage LDA decodes the side at every time point, cross-validated
leave-one-run-out (the folds never split a run); then the classifier
trained at each time is tested at every other time (temporal
generalisation).
"""

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import LeaveOneGroupOut

from neuroenc.datapath import data_path
from neuroenc.decoding.time_resolved import GeneralizingDecoder, SlidingDecoder, cross_val_time_score
from neuroenc.io import read_eeg

runs = [3, 4, 7, 8, 11, 12]
folder = data_path("eegbci", "S001")
epochs = read_eeg(
    [folder / f"S001R{r:02d}.edf" for r in runs],
    event_id={"left": "T1", "right": "T2"},
    tmin=-0.2,
    tmax=0.8,
    baseline=(None, 0.0),
    resample=40.0,
    runs=runs,
)
print(epochs)

lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
cv = LeaveOneGroupOut()
# y defaults to epochs.conditions; groups="run" reads epochs.obs["run"]
sliding = cross_val_time_score(SlidingDecoder(lda, scoring="roc_auc"), epochs, groups="run", cv=cv)
auc = sliding.mean(axis=0)
sem = sliding.std(axis=0, ddof=1) / np.sqrt(len(sliding))
print(f"\nROC AUC over {len(sliding)} held-out runs (chance 0.5)")
print("time (s)   AUC    sem")
for i in range(0, len(epochs.times), 2):
    bar = "#" * int(round(40 * max(auc[i] - 0.5, 0)))
    print(f"{epochs.times[i]:+7.3f}  {auc[i]:.3f}  {sem[i]:.3f}  {bar}")
best = auc.argmax()
print(f"peak: AUC {auc[best]:.3f} at {epochs.times[best]:.3f} s")

general = cross_val_time_score(GeneralizingDecoder(lda, scoring="roc_auc"), epochs, groups="run", cv=cv).mean(axis=0)
step = 4  # every 100 ms
ticks = epochs.times[::step]
print("\ntemporal generalisation (rows: training time, columns: testing time, s)")
print("train\\test " + " ".join(f"{t:+6.1f}" for t in ticks))
for t, row in zip(ticks, general[::step, ::step]):
    print(f"{t:+10.1f} " + " ".join(f"{v:6.2f}" for v in row))
diagonal = np.diag(general)
print(f"mean AUC, diagonal after 0.2 s: {diagonal[epochs.times > 0.2].mean():.3f}")
peak_models = general[np.abs(epochs.times - 0.3) <= 0.05]
print(f"mean AUC, trained at 0.25-0.35 s and tested after 0.4 s: {peak_models[:, epochs.times > 0.4].mean():.3f}")
