"""Loaders: EEG/MEG/iEEG (MNE), fMRI (nilearn) and spikes into :class:`~neuroenc.BrainData`."""

from neuroenc.io.eeg import read_eeg, read_raw
from neuroenc.io.fmri import events_from_labels, read_fmri
from neuroenc.io.spikes import bin_spikes, read_nwb, read_spikes

__all__ = ["read_eeg", "read_raw", "read_fmri", "events_from_labels", "read_spikes", "read_nwb", "bin_spikes"]
