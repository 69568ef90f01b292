"""Datasets neuroenc knows about: loaders of the local copies, a registry, paradigms.

The registry, the paradigms and the MOABB adapter are imported on first use,
so that ``import neuroenc.datasets`` does not load MNE, MOABB or PyYAML.
"""

from neuroenc._lazy import lazy_exports
from neuroenc.datasets.local import (
    PHYSIONET_MI_TASKS,
    load_grasshopper,
    load_haxby,
    load_physionet_mi,
)

_EXPORTS = {
    "Dataset": "registry",
    "PhysionetMI": "registry",
    "Haxby": "registry",
    "register_dataset": "registry",
    "get_dataset": "registry",
    "list_datasets": "registry",
    "as_dataset": "registry",
    "BaseParadigm": "paradigms",
    "MotorImagery": "paradigms",
    "LeftRightImagery": "paradigms",
    "ERP": "paradigms",
    "P300": "paradigms",
    "FMRICategory": "paradigms",
    "MoabbDataset": "moabb_adapter",
    "from_moabb_paradigm": "moabb_adapter",
    "UserDataset": "user",
}

_lazy_all, __getattr__, __dir__ = lazy_exports("neuroenc.datasets", _EXPORTS, globals())
__all__ = ["PHYSIONET_MI_TASKS", "load_physionet_mi", "load_haxby", "load_grasshopper", *_lazy_all]
