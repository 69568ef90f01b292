"""Store BrainData in HDF5 and read back a subset of observations."""

import tempfile
from pathlib import Path

from neuroenc import BrainData
from neuroenc.datasets import load_physionet_mi

epochs = load_physionet_mi(subject=1, task="imagery_lr")

with tempfile.TemporaryDirectory() as tmp:
    store = Path(tmp) / "study.h5"
    epochs.to_hdf5(store, key="sub-01/imagery_lr")  # atomic: temp file + rename
    left = BrainData.from_hdf5(store, key="sub-01/imagery_lr", obs_query="condition == 'left_fist'")
    print(left)
    print(left.provenance[0]["step"], "->", [p["file"] for p in left.provenance[0]["params"]["sources"]])
