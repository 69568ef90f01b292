"""Pipelines for evaluations, loaded from YAML or Python files.

A YAML file describes one or more scikit-learn pipelines as data::

    name: CSP + LDA
    steps:
      - class: CSP
        params: {n_components: 6}
      - LDA
    ---
    name: TS + LR
    steps:
      - {class: neuroenc.riemann.Covariances, params: {estimator: oas}}
      - TangentSpace
      - {class: sklearn.linear_model.LogisticRegression, params: {C: 1.0}}

A step is a short name from :data:`STEP_CLASSES` or the dotted path of a
class in one of :data:`ALLOWED_PREFIXES`. YAML is parsed with
``yaml.safe_load`` and only classes defined in those packages can be named,
so a pipeline file cannot run arbitrary code. A Python file, by contrast, is
executed like any script: it defines ``PIPELINES = {name: estimator}`` (or
MOABB's ``pipelines`` / ``PIPELINE``).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Mapping
from typing import Any

from neuroenc.errors import CorruptFileError, DataError, UnknownNameError
from neuroenc.validation import check_file

__all__ = [
    "ALLOWED_PREFIXES",
    "STEP_CLASSES",
    "build_estimator",
    "load_pipelines",
    "pipelines_from_python",
    "pipelines_from_yaml",
    "pipelines_from_spec",
]

#: Packages whose classes a YAML step may name by dotted path.
ALLOWED_PREFIXES: tuple[str, ...] = ("neuroenc.", "sklearn.", "pyriemann.", "mne.")

#: Short step names and the class each stands for.
STEP_CLASSES: dict[str, str] = {
    # neuroenc Riemannian geometry
    "Covariances": "neuroenc.riemann.Covariances",
    "AugmentedCovariances": "neuroenc.riemann.AugmentedCovariances",
    "FilterBankCovariances": "neuroenc.riemann.FilterBankCovariances",
    "TangentSpace": "neuroenc.riemann.TangentSpace",
    "MDM": "neuroenc.riemann.MDM",
    "FgMDM": "neuroenc.riemann.FgMDM",
    "TSClassifier": "neuroenc.riemann.TSClassifier",
    "FGDA": "neuroenc.riemann.FGDA",
    # MNE
    "CSP": "mne.decoding.CSP",
    "Vectorizer": "mne.decoding.Vectorizer",
    # scikit-learn
    "LDA": "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
    "LinearDiscriminantAnalysis": "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
    "LogisticRegression": "sklearn.linear_model.LogisticRegression",
    "RidgeClassifier": "sklearn.linear_model.RidgeClassifier",
    "Ridge": "sklearn.linear_model.Ridge",
    "SVC": "sklearn.svm.SVC",
    "StandardScaler": "sklearn.preprocessing.StandardScaler",
    "PCA": "sklearn.decomposition.PCA",
}

_PYTHON_SUFFIXES = (".py",)
_YAML_SUFFIXES = (".yml", ".yaml")


def _where(source: str, pipeline: str | None = None, step: int | None = None) -> str:
    parts = [source]
    if pipeline is not None:
        parts.append(f"pipeline {pipeline!r}")
    if step is not None:
        parts.append(f"step {step}")
    return ", ".join(parts)


def _allowed(dotted: str) -> bool:
    return dotted.startswith(ALLOWED_PREFIXES)


def _resolve_class(name: str, where: str) -> type:
    """Import the class a step names, refusing anything outside :data:`ALLOWED_PREFIXES`."""
    dotted = STEP_CLASSES.get(name, name)
    if "." not in dotted:
        known = ", ".join(sorted(STEP_CLASSES))
        raise UnknownNameError(
            f"{where}: unknown step class {name!r}; use a short name ({known}) or a dotted path "
            f"starting with {', '.join(ALLOWED_PREFIXES)}"
        )
    if not _allowed(dotted):
        raise DataError(
            f"{where}: class {name!r} is not allowed; pipeline files may only name classes from "
            f"{', '.join(p.rstrip('.') for p in ALLOWED_PREFIXES)}"
        )
    module_name, _, attr = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        obj = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownNameError(f"{where}: cannot import {dotted!r} ({exc})") from None
    # A dotted path can reach objects re-exported from elsewhere (``sklearn.x.os``);
    # only classes really defined in an allowed package are accepted.
    if not inspect.isclass(obj) or not _allowed(f"{obj.__module__}."):
        raise DataError(f"{where}: {dotted!r} is not a class defined in {', '.join(ALLOWED_PREFIXES)}")
    return obj


def _step_parts(step: Any, where: str) -> tuple[str, dict[str, Any]]:
    """``(class name, params)`` of one step in the simple or the MOABB YAML layout."""
    if isinstance(step, str):
        return step, {}
    if not isinstance(step, Mapping):
        raise DataError(f"{where}: a step must be a class name or a mapping with 'class', got {step!r}")
    if "class" in step:  # simple layout: {class: ..., params: {...}}
        unknown = set(step) - {"class", "params"}
        name, params = step["class"], step.get("params")
    elif "name" in step:  # MOABB layout: {name: CSP, from: mne.decoding, parameters: {...}}
        unknown = set(step) - {"name", "from", "parameters"}
        name = f"{step['from']}.{step['name']}" if step.get("from") else step["name"]
        params = step.get("parameters")
    else:
        raise DataError(f"{where}: a step mapping needs a 'class' key, got keys {sorted(step)}")
    if unknown:
        raise DataError(f"{where}: unknown step key(s) {sorted(unknown)}; expected 'class' and 'params'")
    if not isinstance(name, str):
        raise DataError(f"{where}: the step class must be a string, got {name!r}")
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        raise DataError(f"{where}: 'params' must be a mapping of parameter names to values, got {params!r}")
    return name, dict(params)


def _is_nested_step(value: Any) -> bool:
    return isinstance(value, Mapping) and "class" in value and set(value) <= {"class", "params"}


def build_estimator(step: str | Mapping[str, Any], where: str = "step") -> Any:
    """Instantiate one step described as data.

    Parameters
    ----------
    step : str or mapping
        A class name (short name or dotted path) or ``{"class": name, "params": {...}}``;
        a parameter value that is itself such a mapping builds a nested estimator
        (e.g. the classifier of a ``TSClassifier``).
    where : str
        Location used in error messages.

    Returns
    -------
    estimator
        The constructed object.
    """
    name, params = _step_parts(step, where)
    cls = _resolve_class(name, where)
    params = {
        k: build_estimator(v, f"{where}, parameter {k!r}") if _is_nested_step(v) else v for k, v in params.items()
    }
    try:
        return cls(**params)
    except TypeError as exc:
        raise DataError(f"{where}: cannot build {cls.__name__} with params {params!r} ({exc})") from None


def _pipeline_entries(doc: Any, source: str) -> list[Mapping[str, Any]]:
    """The pipeline mappings of one YAML document (one pipeline, a list, or ``pipelines:``)."""
    if doc is None:
        return []
    if isinstance(doc, Mapping) and "pipelines" in doc and "steps" not in doc:
        doc = doc["pipelines"]
    entries = doc if isinstance(doc, list) else [doc]
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise DataError(f"{_where(source)}: pipeline entry {i} must be a mapping with 'name' and 'steps'")
    return entries


def pipelines_from_spec(spec: Any, source: str = "<spec>") -> dict[str, Any]:
    """Build pipelines from parsed YAML data (a mapping, a list of them, or a list of documents).

    Parameters
    ----------
    spec : mapping or list
        One pipeline ``{"name": ..., "steps": [...]}``, a list of them, ``{"pipelines": [...]}``
        or MOABB's layout with ``pipeline:`` instead of ``steps:``.
    source : str
        Name used in error messages (usually the file name).

    Returns
    -------
    dict of str to sklearn.pipeline.Pipeline
        Pipelines in file order.
    """
    from sklearn.pipeline import make_pipeline

    docs = spec if isinstance(spec, list) else [spec]
    entries = [e for doc in docs for e in _pipeline_entries(doc, source)]
    pipelines: dict[str, Any] = {}
    for i, entry in enumerate(entries):
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise DataError(f"{_where(source)}: pipeline entry {i} needs a non-empty string 'name'")
        steps = entry.get("steps", entry.get("pipeline"))
        if not isinstance(steps, list) or not steps:
            raise DataError(f"{_where(source, name)}: 'steps' must be a non-empty list")
        unknown = set(entry) - {"name", "steps", "pipeline", "paradigms", "citations"}
        if unknown:
            raise DataError(f"{_where(source, name)}: unknown key(s) {sorted(unknown)}; expected 'name' and 'steps'")
        if name in pipelines:
            raise DataError(f"{_where(source, name)}: pipeline name defined twice")
        built = [build_estimator(step, _where(source, name, k)) for k, step in enumerate(steps)]
        pipelines[name] = make_pipeline(*built)
    if not pipelines:
        raise DataError(f"{_where(source)}: no pipeline defined")
    return pipelines


def pipelines_from_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read pipelines from a YAML file (safe loader; only allowed classes are built).

    Parameters
    ----------
    path : str or path-like
        YAML file; several pipelines may be given as a list or as ``---``-separated documents.

    Returns
    -------
    dict of str to sklearn.pipeline.Pipeline
    """
    import yaml

    p = check_file(path, "pipeline file")
    try:
        docs = list(yaml.safe_load_all(p.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CorruptFileError(f"{p}: invalid YAML{at}: {problem}") from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise CorruptFileError(f"{p}: cannot read as YAML text ({exc})") from None
    return pipelines_from_spec(docs, str(p))


def _pipelines_of_module(module: Any, source: str) -> dict[str, Any]:
    for attr in ("PIPELINES", "pipelines", "PIPELINE"):
        value = getattr(module, attr, None)
        if value is None:
            continue
        if attr == "PIPELINE" or (isinstance(value, Mapping) and "pipeline" in value and "name" in value):
            value = [value]
        if isinstance(value, Mapping):
            return {str(k): v for k, v in value.items()}
        if isinstance(value, list) and all(isinstance(v, Mapping) and {"name", "pipeline"} <= set(v) for v in value):
            return {str(v["name"]): v["pipeline"] for v in value}
        raise DataError(
            f"{source}: {attr} must be a dict of name -> estimator or a list of {{'name', 'pipeline'}} dicts"
        )
    raise DataError(f"{source}: defines no PIPELINES = {{name: estimator}} (nor MOABB's pipelines / PIPELINE)")


def _ship_by_value(module: Any) -> None:
    """Let process and Dask workers unpickle classes the file defines: they cannot import it."""
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - comes with joblib's loky and with dask
        return
    cloudpickle.register_pickle_by_value(module)


def pipelines_from_python(path: str | os.PathLike) -> dict[str, Any]:
    """Run a Python file and return the pipelines it defines.

    The file is executed as a module (it may import anything), and must define
    ``PIPELINES = {name: estimator}``, MOABB's ``pipelines`` (dict or list of
    ``{"name", "pipeline"}`` dicts) or ``PIPELINE = {"name", "pipeline"}``.

    Parameters
    ----------
    path : str or path-like
        Python source file.

    Returns
    -------
    dict of str to estimator
    """
    p = check_file(path, "pipeline file")
    module_name = f"_neuroenc_pipelines_{p.stem}"
    spec = importlib.util.spec_from_file_location(module_name, p)
    if spec is None or spec.loader is None:
        raise CorruptFileError(f"{p}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise CorruptFileError(f"{p}: invalid Python at line {exc.lineno}: {exc.msg}") from None
    _ship_by_value(module)
    pipelines = _pipelines_of_module(module, str(p))
    for name, est in pipelines.items():
        if not hasattr(est, "fit") and not callable(est):
            raise DataError(f"{_where(str(p), name)}: {type(est).__name__} is neither an estimator nor a callable")
    if not pipelines:
        raise DataError(f"{p}: no pipeline defined")
    return pipelines


def load_pipelines(path: str | os.PathLike) -> dict[str, Any]:
    """Load pipelines from a YAML file, a Python file, or a folder of such files.

    Parameters
    ----------
    path : str or path-like
        ``.yml``/``.yaml`` (see :func:`pipelines_from_yaml`), ``.py`` (see
        :func:`pipelines_from_python`), or a folder whose files of these types are
        read in name order.

    Returns
    -------
    dict of str to estimator
        Pipeline name to (unfitted) estimator.
    """
    p = check_file(path, "pipeline file")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix in _YAML_SUFFIXES + _PYTHON_SUFFIXES)
        if not files:
            raise DataError(f"{p}: folder holds no .yml, .yaml or .py pipeline file")
        merged: dict[str, Any] = {}
        for f in files:
            for name, est in load_pipelines(f).items():
                if name in merged:
                    raise DataError(f"{_where(str(f), name)}: pipeline name already defined by another file")
                merged[name] = est
        return merged
    if p.suffix in _PYTHON_SUFFIXES:
        return pipelines_from_python(p)
    if p.suffix in _YAML_SUFFIXES:
        return pipelines_from_yaml(p)
    raise DataError(f"{p}: unknown pipeline file type {p.suffix!r}; use .yml, .yaml or .py")
