"""Ready-made loaders for the datasets neuroenc knows about."""

from neuroenc.datasets.local import (
    PHYSIONET_MI_TASKS,
    load_grasshopper,
    load_haxby,
    load_physionet_mi,
)

__all__ = ["PHYSIONET_MI_TASKS", "load_physionet_mi", "load_haxby", "load_grasshopper"]
