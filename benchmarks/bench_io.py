"""Loader and HDF5-store benchmarks: neuroenc against MNE in the same run.

Run: ``python benchmarks/bench_io.py`` (needs the data folder). Prints medians
and ratios (reference time / neuroenc time; above 1 means neuroenc is faster).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import mne

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_subprocess_time, median_time, print_table  # noqa: E402

from neuroenc import BrainData, concatenate  # noqa: E402
from neuroenc.datapath import data_path  # noqa: E402
from neuroenc.io import read_eeg  # noqa: E402

mne.set_log_level("ERROR")
REPEAT = 5


def mne_pipeline(files):
    parts = []
    for f in files:
        raw = mne.io.read_raw_edf(f, preload=True)
        raw.filter(8.0, 30.0)
        events, _ = mne.events_from_annotations(raw, event_id={"T1": 1, "T2": 2})
        parts.append(mne.Epochs(raw, events, {"left": 1, "right": 2}, 0.0, 4.0, baseline=None, preload=True))
    return mne.concatenate_epochs(parts)


def main() -> None:
    folder = data_path("eegbci", "S001")
    files = [folder / f"S001R{r:02d}.edf" for r in (4, 8, 12)]
    rows = []

    ours = median_time(
        lambda: read_eeg(files, {"left": "T1", "right": "T2"}, 0.0, 4.0, l_freq=8.0, h_freq=30.0), REPEAT
    )
    ref = median_time(lambda: mne_pipeline(files), REPEAT)
    rows.append(("read_eeg: 3 PhysioNet runs, filter + epoch", ours, ref, "MNE read/filter/Epochs"))

    # A larger store: the 45 epochs tiled to 900 (about 300 MB) to measure I/O, not overhead.
    epochs = read_eeg(files, {"left": "T1", "right": "T2"}, 0.0, 4.0)
    big = concatenate([epochs] * 20, keys=list(range(20)), key_name="block")
    mne_big = big.to_mne()
    with tempfile.TemporaryDirectory() as tmp:
        h5 = Path(tmp) / "big.h5"
        raw_h5 = Path(tmp) / "big_raw.h5"
        fif = Path(tmp) / "big-epo.fif"
        fif64 = Path(tmp) / "big64-epo.fif"
        size = f"{big.n_obs} epochs, {big.data.nbytes / 1e6:.0f} MB float64"
        write = median_time(lambda: big.to_hdf5(h5, overwrite=True), 3)
        write_raw = median_time(lambda: big.to_hdf5(raw_h5, overwrite=True, compression=None), 3)
        save32 = median_time(lambda: mne_big.save(fif, overwrite=True, split_size="2GB"), 3)
        save64 = median_time(lambda: mne_big.save(fif64, overwrite=True, split_size="2GB", fmt="double"), 3)
        rows.append((f"write {size} (lzf)", write, save64, "Epochs.save fmt=double (exact)"))
        rows.append(("write, compression=None", write_raw, save64, "Epochs.save fmt=double (exact)"))
        rows.append(("write (lzf) vs lossy float32 FIF", write, save32, "Epochs.save fmt=single"))
        read = median_time(lambda: BrainData.from_hdf5(h5), REPEAT)
        read_raw = median_time(lambda: BrainData.from_hdf5(raw_h5), REPEAT)
        load64 = median_time(lambda: mne.read_epochs(fif64, preload=True), REPEAT)
        rows.append(("read all (lzf)", read, load64, "mne.read_epochs (double FIF)"))
        rows.append(("read all, compression=None", read_raw, load64, "mne.read_epochs (double FIF)"))
        block = mne_big.metadata["block"].to_numpy() == 3
        sub = median_time(lambda: BrainData.from_hdf5(h5, obs_query="block == 3"), REPEAT)
        sub_ref = median_time(lambda: mne.read_epochs(fif64, preload=True)[block], REPEAT)
        rows.append(("read 1 block of 20 (obs_query, lzf)", sub, sub_ref, "read_epochs + index"))
        sizes = {p.name: p.stat().st_size / 1e6 for p in (h5, raw_h5, fif, fif64)}
        print("file sizes (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in sizes.items()))

    imp_ours = median_subprocess_time("import neuroenc", REPEAT)
    imp_ref = median_subprocess_time("import mne", REPEAT)
    rows.append(("import (fresh interpreter)", imp_ours, imp_ref, "import mne"))
    print_table(rows)


if __name__ == "__main__":
    main()
