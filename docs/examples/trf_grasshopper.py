"""Temporal response functions of a grasshopper auditory receptor (nitime data, Rokem et al. 2006).

The stimulus is the amplitude envelope of an amplitude-modulated tone
(20 kHz samples, envelope bandwidth 200 Hz); the response is the spike train
of one receptor neuron over the same 10 s. The envelope is downsampled to
1 kHz and the spikes are counted in 1-ms bins; both are cut into ten 1-s
segments, the unit of cross-validation (lags never cross a segment edge).

1. Forward model (encoding): spike count at t from the envelope at
   t - 30 ms ... t + 5 ms. The ridge penalty is chosen by an inner grid
   search; the held-out correlation is reported per outer fold.
2. Backward model (decoding): the envelope at t reconstructed from the
   spikes at t ... t + 30 ms.
"""

import numpy as np
from scipy.signal import decimate
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from neuroenc.datapath import data_path
from neuroenc.encoding.lagged import TRF
from neuroenc.io import read_spikes

folder = data_path("nitime")
stimulus = np.loadtxt(folder / "grasshopper_stimulus1.txt")[:, 1]  # 200000 samples at 20 kHz
envelope = decimate(stimulus, 20, ftype="fir", zero_phase=True)  # 1 kHz
spike_times = np.loadtxt(folder / "grasshopper_spike_times1.txt")  # microseconds
segments = read_spikes(
    spike_times,
    np.arange(10) * 1e6,
    [f"segment{i}" for i in range(10)],
    tmin=0.0,
    tmax=1.0,
    bin_size=1e-3,
    time_unit="us",
)
X = envelope.reshape(10, 1000, 1)  # (segments, times, features)
y = segments.data[:, 0, :]  # (segments, times): one target
print(f"{X.shape[0]} segments x {X.shape[1]} samples at 1 kHz; {int(y.sum())} spikes")

outer, inner = KFold(5), KFold(4)
forward = GridSearchCV(TRF(-0.005, 0.03, 1000.0), {"estimator": list(np.logspace(-1, 4, 6))}, cv=inner)
r = cross_val_score(forward, X, y, cv=outer)
print(f"forward model, held-out r per fold: {np.round(r, 3)}; mean {r.mean():.3f}")

forward.fit(X, y)
trf = forward.best_estimator_
print(f"alpha chosen on all segments: {trf.estimator:g}")
weights = trf.coef_[0, 0]
print(f"peak at lag {1000 * trf.lags_[weights.argmax()]:.0f} ms")
print("lag (ms)  weight")
for lag, w in zip(trf.lags_, weights):
    if lag <= 0.015:
        print(f"{1000 * lag:8.0f}  {w:+.3f}")

spikes = y[:, :, None]  # as an input: (segments, times, channels)
backward = GridSearchCV(
    TRF(0.0, 0.03, 1000.0, direction="backward"), {"estimator": list(np.logspace(-1, 4, 6))}, cv=inner
)
r_back = cross_val_score(backward, spikes, X, cv=outer)
print(f"backward model (spikes -> envelope), held-out r: {np.round(r_back, 3)}; mean {r_back.mean():.3f}")
