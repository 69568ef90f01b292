"""Bin the grasshopper auditory-receptor spike trains into trials."""

import numpy as np

from neuroenc.datapath import data_path
from neuroenc.io import read_spikes

folder = data_path("nitime")
trains = {f"rec{i}": np.loadtxt(folder / f"grasshopper_spike_times{i}.txt") for i in (1, 2)}

onsets = np.arange(10) * 1e6  # ten 1-s segments, in microseconds like the spike times
spikes = read_spikes(
    trains,
    trial_onsets=onsets,
    labels=[f"seg{i}" for i in range(10)],
    tmin=0.0,
    tmax=1.0,
    bin_size=0.05,
    time_unit="us",
    output="rates",
)
print(spikes)
print("mean rate per unit (spikes/s):", spikes.data.mean(axis=(0, 2)).round(1))
