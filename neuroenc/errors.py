"""Exception hierarchy of neuroenc.

Every error neuroenc raises on bad input derives from :class:`NeuroencError`
and from the built-in exception a user would naturally catch
(:class:`ValueError` for bad values, :class:`OSError` for files), so that
``except ValueError`` keeps working for code written against scikit-learn or
MNE.
"""

from __future__ import annotations

__all__ = [
    "NeuroencError",
    "DataError",
    "ShapeError",
    "NonFiniteError",
    "LabelError",
    "EmptySelectionError",
    "UnknownNameError",
    "ModalityError",
    "NotSPDError",
    "FileError",
    "MissingFileError",
    "CorruptFileError",
    "StoreError",
]


class NeuroencError(Exception):
    """Base class of every exception raised by neuroenc."""


class DataError(NeuroencError, ValueError):
    """Input values are unusable (wrong shape, non-finite, inconsistent)."""


class ShapeError(DataError):
    """An array has the wrong number of dimensions or the wrong length."""


class NonFiniteError(DataError):
    """An array holds NaN or infinite values; the message gives the first position."""


class LabelError(DataError):
    """Labels or metadata do not match the data they describe."""


class EmptySelectionError(DataError):
    """A selection or query matched nothing."""


class UnknownNameError(DataError):
    """A name (event, condition, metric, estimator, key) is not known.

    The message lists the names that are available.
    """


class ModalityError(DataError):
    """An operation does not apply to the modality of the data."""


class NotSPDError(DataError):
    """A matrix that must be symmetric positive definite is not."""


class FileError(NeuroencError, OSError):
    """A file cannot be used."""


class MissingFileError(FileError, FileNotFoundError):
    """A file or folder does not exist."""


class CorruptFileError(FileError):
    """A file exists but cannot be parsed (truncated, damaged or of another format)."""


class StoreError(FileError):
    """An HDF5 store cannot be written or read as asked (e.g. key exists)."""
