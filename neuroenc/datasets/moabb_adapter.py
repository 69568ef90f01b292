"""Use MOABB datasets and paradigms with neuroenc.

:class:`MoabbDataset` wraps any MOABB dataset object (including
``moabb.datasets.fake.FakeDataset``, which needs no network) as a neuroenc
:class:`~neuroenc.datasets.registry.Dataset`; :func:`from_moabb_paradigm`
turns a MOABB paradigm object into the neuroenc paradigm with the same
parameters. MOABB is imported only when one of these is used.
"""

from __future__ import annotations

from typing import Any

from neuroenc.datasets.registry import Dataset
from neuroenc.errors import DataError, UnknownNameError

__all__ = ["MoabbDataset", "is_moabb_dataset", "is_moabb_paradigm", "from_moabb_paradigm"]


def is_moabb_dataset(obj: Any) -> bool:
    """Whether ``obj`` is a MOABB dataset object (without importing MOABB otherwise)."""
    if not type(obj).__module__.startswith("moabb"):
        return False
    from moabb.datasets.base import BaseDataset

    return isinstance(obj, BaseDataset)


def is_moabb_paradigm(obj: Any) -> bool:
    """Whether ``obj`` is a MOABB paradigm object."""
    if not type(obj).__module__.startswith("moabb"):
        return False
    from moabb.paradigms.base import BaseProcessing

    return isinstance(obj, BaseProcessing)


class MoabbDataset(Dataset):
    """A MOABB dataset seen as a neuroenc dataset.

    Parameters
    ----------
    moabb_dataset : moabb.datasets.base.BaseDataset
        Any MOABB dataset object. Its ``get_data`` does the loading (and any
        download MOABB needs); the paradigm then filters and epochs the raws
        exactly as MOABB's paradigms do.

    Notes
    -----
    ``code``, ``subject_list``, ``paradigm``, ``interval``, ``events``
    (MOABB's ``event_id``) and ``unit_factor`` are the wrapped dataset's.
    MOABB moves event annotations to ``interval[0]`` after the cue; this is
    undone when events are read (``annotation_offset``).
    """

    source = "MOABB"

    def __init__(self, moabb_dataset: Any) -> None:
        if not is_moabb_dataset(moabb_dataset):
            raise DataError(f"MoabbDataset wraps a MOABB dataset object; got {type(moabb_dataset).__name__}.")
        self.moabb_dataset = moabb_dataset
        self.code = str(moabb_dataset.code)
        self.subject_list = list(moabb_dataset.subject_list)
        self.paradigm = str(moabb_dataset.paradigm)
        self.interval = tuple(float(v) for v in moabb_dataset.interval)
        self.events = dict(moabb_dataset.event_id)
        self.sessions_per_subject = int(getattr(moabb_dataset, "n_sessions", 1) or 1)
        self.unit_factor = float(getattr(moabb_dataset, "unit_factor", 1e6))
        self.annotation_offset = self.interval[0]
        self.return_all_modalities = getattr(moabb_dataset, "return_all_modalities", False)
        self.source = f"MOABB {type(moabb_dataset).__name__}"

    def available(self) -> bool:
        # Fake datasets are generated; real MOABB datasets may need a download.
        return type(self.moabb_dataset).__module__.startswith("moabb.datasets.fake")

    def get_data(self, subjects: Any = None) -> dict:
        """Raw recordings from the MOABB dataset (its default annotation step applied)."""
        return self.moabb_dataset.get_data(subjects=self.check_subjects(subjects))


#: MOABB paradigm class name -> (neuroenc paradigm class name, constructor arguments to copy).
_PARADIGM_MAP = {
    "LeftRightImagery": "LeftRightImagery",
    "MotorImagery": "MotorImagery",
    "Imagery": "MotorImagery",
    "P300": "P300",
    "FakeP300Paradigm": "P300",
    "FakeImageryParadigm": "MotorImagery",
}


def from_moabb_paradigm(moabb_paradigm: Any, *, cache: Any = None) -> Any:
    """The neuroenc paradigm equivalent to a MOABB paradigm object.

    Parameters
    ----------
    moabb_paradigm : moabb.paradigms.base.BaseParadigm
        A single-band MOABB motor-imagery or P300 paradigm.
    cache : path-like, optional
        Cache folder of the neuroenc paradigm.

    Returns
    -------
    MotorImagery, LeftRightImagery or P300
        Same band, window, baseline, channels, resampling and events.
    """
    from neuroenc.datasets import paradigms

    if not is_moabb_paradigm(moabb_paradigm):
        raise DataError(f"Expected a MOABB paradigm object, got {type(moabb_paradigm).__name__}.")
    name = type(moabb_paradigm).__name__
    if name not in _PARADIGM_MAP:
        raise UnknownNameError(
            f"MOABB paradigm {name!r} has no neuroenc equivalent; supported: {', '.join(sorted(_PARADIGM_MAP))}."
        )
    filters = list(moabb_paradigm.filters)
    if len(filters) != 1:
        raise DataError(f"Only single-band MOABB paradigms are supported; {name} has {len(filters)} bands.")
    fmin, fmax = filters[0]
    common = dict(
        fmin=fmin,
        fmax=fmax,
        tmin=moabb_paradigm.tmin,
        tmax=moabb_paradigm.tmax,
        baseline=moabb_paradigm.baseline,
        channels=moabb_paradigm.channels,
        resample=moabb_paradigm.resample,
        cache=cache,
    )
    target = _PARADIGM_MAP[name]
    if target == "MotorImagery":
        return paradigms.MotorImagery(n_classes=moabb_paradigm.n_classes, events=moabb_paradigm.events, **common)
    if target == "P300":
        return paradigms.P300(events=moabb_paradigm.events, **common)
    return paradigms.LeftRightImagery(**common)
