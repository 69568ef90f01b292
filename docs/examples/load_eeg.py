"""Load PhysioNet motor-imagery EEG (imagined left vs right fist) into BrainData."""

from neuroenc.datapath import data_path
from neuroenc.io import read_eeg

folder = data_path("eegbci", "S001")
runs = [4, 8, 12]  # imagined left/right fist
epochs = read_eeg(
    [folder / f"S001R{r:02d}.edf" for r in runs],
    event_id={"left": "T1", "right": "T2"},  # condition name -> annotation
    tmin=0.0,
    tmax=4.0,
    l_freq=8.0,
    h_freq=30.0,  # mu/beta band, filtered per run before epoching
    runs=runs,
    subject=1,
)
print(epochs)
print(epochs.obs.groupby(["run", "condition"]).size().unstack())

left_run8 = epochs.select(condition="left", run=8)
print(left_run8.shape)

evoked = epochs.average(within="run")  # one average per condition and run
print(evoked.obs)

mne_epochs = epochs.to_mne()  # back to MNE, obs as metadata
print(mne_epochs)
