"""Activations of any :class:`torch.nn.Module` for a stimulus set, through forward hooks.

:func:`list_layers` shows the named modules of a network with the shape of
their outputs; :func:`extract_activations` runs the stimuli through the
network batch by batch, keeps the outputs of the chosen modules, optionally
reduces them (:mod:`neuroenc.activations.reduce`) and collects them in an
:class:`~neuroenc.activationdata.Activations` container, in memory or
streamed to an HDF5 file that survives interruptions.

torch is imported only when these functions run.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neuroenc._h5 import check_hdf5, file_lock, replaced_atomically
from neuroenc.activationdata import (
    STORE_KIND,
    Activations,
    check_stimulus_ids,
    h5_layer_name,
    match_names,
    per_layer,
    write_header,
)
from neuroenc.activations.reduce import Reducer, resolve_reducers
from neuroenc.errors import (
    CorruptFileError,
    DataError,
    EmptySelectionError,
    LabelError,
    MissingFileError,
    NonFiniteError,
    ShapeError,
    StoreError,
)
from neuroenc.validation import check_array

__all__ = ["extract_activations", "list_layers", "first_tensor"]

_KEY = "activations"  # group of a streamed extraction, read by Activations.from_hdf5(path)


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is an optional dependency
        raise ImportError("Extracting activations needs PyTorch: pip install 'neuroenc[torch]'.") from exc
    return torch


def first_tensor(output: Any) -> Any:
    """The tensor a layer's output stands for: the first tensor found depth-first.

    A tensor is returned as is; in a tuple or list (``nn.LSTM`` returns
    ``(output, (h, c))``, attention modules ``(output, weights)``) and in a
    mapping (e.g. a Hugging Face ``ModelOutput``) the first tensor, searched
    depth-first, is used. Returns None if there is none.
    """
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        for item in output:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------
# Stimuli
# --------------------------------------------------------------------------
class _Batches:
    """Model inputs, batch by batch, from any supported kind of stimuli.

    Arrays and tensors are cut into batches along their first axis; a
    map-style ``Dataset`` is batched with ``default_collate``; a
    ``DataLoader`` or ``IterableDataset`` is used as it batches; any other
    iterable yields batches. A batch that is a tuple or list (e.g.
    ``(inputs, targets)``) contributes its first element; a dict batch is
    passed as keyword arguments.
    """

    def __init__(self, stimuli: Any, batch_size: int, preprocess: Callable | None, device: Any, dtype: Any):
        torch = _import_torch()
        data = torch.utils.data
        self.torch = torch
        self.batch_size = batch_size
        self.preprocess = preprocess
        self.device = device
        self.dtype = dtype
        self._pending: Iterator | None = None
        self._first: tuple | None = None
        self.n: int | None = None
        if isinstance(stimuli, (np.ndarray, torch.Tensor)):
            self.kind = "array"
            self.stimuli = self._check_array(stimuli)
            self.n = len(self.stimuli)
        elif isinstance(stimuli, data.DataLoader):
            sampler = getattr(stimuli.batch_sampler, "sampler", stimuli.sampler)
            random = (data.RandomSampler, data.SubsetRandomSampler, data.WeightedRandomSampler)
            if isinstance(sampler, random) or isinstance(stimuli.sampler, random):
                raise DataError(
                    f"The DataLoader draws stimuli in random order ({type(sampler).__name__}); activations would "
                    "not line up with stimulus ids. Use a loader with shuffle=False."
                )
            self.kind, self.stimuli = "iterable", stimuli
            ds = stimuli.dataset
            if (
                isinstance(sampler, data.SequentialSampler)
                and type(stimuli.batch_sampler) is data.BatchSampler
                and hasattr(ds, "__len__")
            ):
                self.n = len(ds) if not stimuli.drop_last else len(stimuli) * stimuli.batch_size
        elif isinstance(stimuli, data.IterableDataset):
            self.kind, self.stimuli = "iterable", data.DataLoader(stimuli, batch_size=batch_size)
        elif hasattr(stimuli, "shape") and hasattr(stimuli, "__getitem__") and hasattr(stimuli, "__len__"):
            self.kind, self.stimuli, self.n = "sliced", stimuli, len(stimuli)  # h5py/zarr arrays: read per batch
        elif isinstance(stimuli, data.Dataset):
            if not hasattr(stimuli, "__len__"):
                raise ShapeError("A map-style Dataset needs __len__; wrap it in a DataLoader instead.")
            self.kind, self.stimuli, self.n = "dataset", stimuli, len(stimuli)
        elif isinstance(stimuli, (str, bytes, Mapping)) or not hasattr(stimuli, "__iter__"):
            raise ShapeError(
                f"stimuli of type {type(stimuli).__name__} are not supported; give a tensor, a numpy array, a "
                "torch Dataset or DataLoader, or an iterable of batches."
            )
        else:
            self.kind, self.stimuli = "iterable", stimuli
        if self.n == 0:
            raise EmptySelectionError("The stimulus set is empty.")

    def _check_array(self, stimuli: Any) -> Any:
        torch = self.torch
        if isinstance(stimuli, np.ndarray):
            arr = check_array(stimuli, "stimuli", dtype=None, allow_nonfinite=False)
            if arr.dtype.kind not in "biuf":
                raise ShapeError(f"stimuli have dtype {arr.dtype}; expected numbers.")
        else:
            arr = stimuli
            if arr.ndim and len(arr) and (arr.is_floating_point() or arr.is_complex()):
                bad = ~torch.isfinite(arr.reshape(len(arr), -1)).all(dim=1) if arr.ndim else ~torch.isfinite(arr)
                if bool(bad.any()):
                    raise NonFiniteError(f"stimuli contain NaN or Inf (first at stimulus {int(bad.nonzero()[0, 0])}).")
        if arr.ndim == 0:
            raise ShapeError("stimuli is a scalar; expected an array (n_stimuli, ...).")
        if len(arr) == 0:
            raise EmptySelectionError("The stimulus set is empty.")
        return arr

    def _raw(self, start: int) -> Iterator[tuple[int | None, Any]]:
        """Raw batches with their first row (None where unknown before preparing)."""
        step = self.batch_size
        if self.kind in ("array", "sliced"):
            for a in range(start, self.n, step):
                yield a, self.stimuli[a : a + step]
        elif self.kind == "dataset":
            collate = self.torch.utils.data.default_collate
            for a in range(start, self.n, step):
                yield a, collate([self.stimuli[i] for i in range(a, min(a + step, self.n))])
        else:
            if self._pending is None:
                self._pending = iter(self.stimuli)
            for raw in self._pending:
                yield None, raw

    def first(self) -> tuple[Any, int]:
        """The first prepared batch (kept, so one-shot iterables are not consumed twice)."""
        if self._first is None:
            for _, raw in self._raw(0):
                self._first = self.prepare(raw, 0)
                break
            else:
                raise EmptySelectionError("The stimuli yielded no batch.")
        return self._first

    def __call__(self, start: int = 0) -> Iterator[tuple[int, Any, int]]:
        """``(first row, inputs, n rows)`` for the batches from row ``start`` on.

        Iterables cannot seek: their batches before ``start`` are prepared
        (to count rows) and skipped, and a batch straddling ``start`` is
        returned whole.
        """
        if self.kind != "iterable":
            for a, raw in self._raw(start):
                inputs, rows = self._first if (a == 0 and self._first is not None) else self.prepare(raw, a)
                yield a, inputs, rows
            return
        offset = 0
        batches = self._raw(0)
        if self._first is not None:
            batches = itertools.chain([(None, None)], batches)
        for i, (_, raw) in enumerate(batches):
            inputs, rows = self._first if (i == 0 and self._first is not None) else self.prepare(raw, offset)
            if offset + rows > start:
                yield offset, inputs, rows
            offset += rows

    def prepare(self, raw: Any, offset: int) -> tuple[Any, int]:
        """Model inputs (a tensor, or a dict of keyword arguments) and the number of stimuli."""
        x = self.preprocess(raw) if self.preprocess is not None else raw
        if isinstance(x, (tuple, list)):
            if not x:
                raise ShapeError(f"The batch at stimulus {offset} is an empty {type(x).__name__}.")
            x = x[0]
        if isinstance(x, Mapping):
            inputs = {
                k: self._tensor(v, offset) if isinstance(v, (np.ndarray, self.torch.Tensor)) else v
                for k, v in x.items()
            }
            tensors = [v for v in inputs.values() if isinstance(v, self.torch.Tensor) and v.ndim > 0]
            if not tensors:
                raise ShapeError(f"The dict batch at stimulus {offset} holds no tensor with a batch axis.")
            rows = len(tensors[0])
        else:
            inputs = self._tensor(x, offset)
            if inputs.ndim == 0:
                raise ShapeError(f"The batch at stimulus {offset} is a scalar; batches need a batch axis.")
            rows = len(inputs)
        if rows == 0:
            raise EmptySelectionError(f"The batch at stimulus {offset} is empty.")
        return inputs, rows

    def _tensor(self, value: Any, offset: int) -> Any:
        torch = self.torch
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biuf":
                raise ShapeError(f"The batch at stimulus {offset} has dtype {value.dtype}; expected numbers.")
            value = torch.from_numpy(np.ascontiguousarray(value))
        elif not isinstance(value, torch.Tensor):
            value = torch.as_tensor(np.asarray(value))
        if value.is_floating_point():
            if self.kind != "array" and value.numel():
                finite = (
                    torch.isfinite(value.reshape(len(value), -1)).all(dim=1) if value.ndim else torch.isfinite(value)
                )
                if not bool(finite.all()):
                    first = int((~finite).nonzero()[0, 0]) if value.ndim else 0
                    raise NonFiniteError(f"Stimulus {offset + first} contains NaN or Inf.")
            if value.dtype != self.dtype:
                value = value.to(self.dtype)  # e.g. float64 numpy images into a float32 network
        return value.to(self.device)


def _fingerprint(inputs: Any, torch: Any) -> str:
    """SHA-1 of the first stimulus of a prepared batch (its values, dtype and shape)."""
    h = hashlib.sha1()
    items = inputs.items() if isinstance(inputs, dict) else [("", inputs)]
    for key, value in items:
        h.update(str(key).encode())
        if isinstance(value, torch.Tensor) and value.ndim > 0:
            row = value[:1].detach().cpu().contiguous()
            h.update(f"{row.dtype}{tuple(row.shape)}".encode())
            h.update(row.reshape(-1).view(torch.uint8).numpy())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------
def _check_model(model: Any, torch: Any) -> None:
    if not isinstance(model, torch.nn.Module):
        raise DataError(f"model must be a torch.nn.Module, got {type(model).__name__}.")


def _model_device_dtype(model: Any, torch: Any) -> tuple[Any, Any]:
    device = dtype = None
    for t in itertools.chain(model.parameters(), model.buffers()):
        device = device if device is not None else t.device
        if dtype is None and t.is_floating_point():
            dtype = t.dtype
    return device if device is not None else torch.device("cpu"), dtype if dtype is not None else torch.float32


def _describe(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _model_digest(model: Any, torch: Any) -> str:
    """SHA-1 of the model's state dict (names, dtypes, shapes and values)."""
    h = hashlib.sha1(_describe(model).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy())
        else:
            h.update(repr(t).encode())
    return h.hexdigest()


@contextlib.contextmanager
def _inference(model: Any, device: Any, torch: Any) -> Iterator[Any]:
    """Eval mode, no gradients, on ``device``; every module's mode and the model's device restored after."""
    home, _ = _model_device_dtype(model, torch)
    target = torch.device(device) if device is not None else home
    if target.type == home.type and target.index is None:
        target = home  # "cuda" means the model's own GPU
    modes = [(m, m.training) for m in model.modules()]
    moved = target != home
    try:
        if moved:
            model.to(target)
        model.eval()
        with torch.no_grad():
            yield target
    finally:
        for module, mode in modes:
            module.training = mode
        if moved:
            model.to(home)


def _forward(model: Any, inputs: Any) -> Any:
    return model(**inputs) if isinstance(inputs, dict) else model(inputs)


def _module_names(model: Any) -> list[str]:
    return [name for name, _ in model.named_modules() if name]


def _select_layers(model: Any, layers: str | Sequence[str] | None) -> list[str]:
    names = _module_names(model)
    if not names:
        raise EmptySelectionError(f"The model ({type(model).__name__}) has no named submodule to hook.")
    if layers is None:
        modules = dict(model.named_modules())
        return [n for n in names if not any(True for _ in modules[n].children())]
    try:
        return match_names(layers, names, "layer")
    except EmptySelectionError:
        raise
    except DataError as exc:
        raise type(exc)(f"{exc} See neuroenc.activations.extract.list_layers(model, example).") from None


class _Hooks:
    """Forward hooks that keep a CPU copy of the chosen modules' outputs for one forward pass."""

    def __init__(self, model: Any, names: list[str], selectors: dict[str, Callable | None], torch: Any):
        self.torch = torch
        self.outputs: dict[str, Any] = {}
        self.calls: dict[str, int] = dict.fromkeys(names, 0)
        self.order: list[str] = []
        self.warned: set[str] = set()
        modules = dict(model.named_modules())
        self.handles = [modules[n].register_forward_hook(self._hook(n, selectors.get(n))) for n in names]

    def _hook(self, name: str, selector: Callable | None) -> Callable:
        def hook(module: Any, args: Any, output: Any) -> None:
            tensor = selector(output) if selector is not None else first_tensor(output)
            if not isinstance(tensor, self.torch.Tensor):
                how = "the output= selector returned" if selector is not None else "the output holds no tensor; got"
                raise ShapeError(f"Layer {name!r}: {how} {type(tensor if selector else output).__name__}.")
            # A copy: in-place modules that follow (ReLU(inplace=True)) would change the hooked tensor.
            self.outputs[name] = tensor.detach().to("cpu", copy=True)
            if self.calls[name] == 0:
                self.order.append(name)
            self.calls[name] += 1

        return hook

    def reset(self) -> None:
        self.outputs.clear()
        self.order.clear()
        for name in self.calls:
            self.calls[name] = 0

    def collect(self, rows: int, offset: int) -> dict[str, np.ndarray]:
        """Arrays of the last forward pass, in the order the layers ran."""
        silent = [n for n, c in self.calls.items() if c == 0]
        if silent:
            raise ShapeError(
                f"Layer(s) {', '.join(map(repr, silent))} did not run in the forward pass. The module is not "
                "used by forward(), or its parent takes a fused fast path that skips submodules in eval mode "
                "(e.g. nn.TransformerEncoderLayer); hook the parent instead."
            )
        arrays = {}
        for name in self.order:
            if self.calls[name] > 1 and name not in self.warned:
                self.warned.add(name)
                warnings.warn(
                    f"Layer {name!r} ran {self.calls[name]} times in one forward pass (a reused module); "
                    "its last output is kept.",
                    UserWarning,
                    stacklevel=4,
                )
            t = self.outputs[name]
            if t.ndim == 0 or t.shape[0] != rows:
                raise ShapeError(
                    f"Layer {name!r} returned shape {tuple(t.shape)} for a batch of {rows} stimuli; its first axis "
                    "is not the batch axis (e.g. a sequence-first transformer or RNN). Pass "
                    f"output={{{name!r}: lambda out: out[0].transpose(0, 1)}} or similar to pick a batch-first tensor."
                )
            if t.dtype == self.torch.bfloat16:
                t = t.float()
            # A sum is a cheap multi-threaded pass; only a non-finite sum (or overflow) needs the exact scan.
            if (t.is_floating_point() or t.is_complex()) and not bool(self.torch.isfinite(t.sum())):
                finite = self.torch.isfinite(t.reshape(rows, -1)).all(dim=1)
                if not bool(finite.all()):
                    bad = int((~finite).nonzero()[0, 0])
                    raise NonFiniteError(f"Layer {name!r} produced NaN or Inf for stimulus {offset + bad}.")
            arrays[name] = t.numpy()
        return arrays

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


# --------------------------------------------------------------------------
# Reduction of one layer, batch by batch
# --------------------------------------------------------------------------
class _LayerStream:
    """Feeds one layer's batches through its reducer; buffers the first ``n_fit`` stimuli when it must learn."""

    def __init__(self, name: str, reducer: Reducer | None, n_stimuli: int | None):
        self.name = name
        self.reducer = reducer
        self.fitted = reducer is None
        self.n_stimuli = n_stimuli
        self.buffer: np.ndarray | None = None
        self.filled = 0
        self.start = 0
        self.overflow: list[np.ndarray] = []
        self.just_fitted = False

    def out_spec(self, input_shape: tuple, dtype: np.dtype) -> tuple[tuple, np.dtype] | None:
        """Output shape and dtype per stimulus if known without transforming."""
        if self.reducer is None:
            return input_shape, np.dtype(dtype)
        shape = self.reducer.output_shape(input_shape)
        return (tuple(shape), self.reducer.output_dtype(dtype)) if shape is not None else None

    def push(self, offset: int, arr: np.ndarray) -> list[tuple[int, np.ndarray]]:
        if self.fitted:
            return [(offset, arr if self.reducer is None else self.reducer.transform(arr))]
        reducer = self.reducer
        if reducer.n_fit is None:
            reducer.fit(arr)
            self.fitted = True
            return [(offset, reducer.transform(arr))]
        if self.buffer is None:
            size = reducer.n_fit if self.n_stimuli is None else min(reducer.n_fit, self.n_stimuli)
            self.buffer = np.empty((size,) + arr.shape[1:], dtype=arr.dtype)
            self.start = offset
        take = min(len(arr), len(self.buffer) - self.filled)
        self.buffer[self.filled : self.filled + take] = arr[:take]
        self.filled += take
        if take < len(arr):
            self.overflow.append(arr[take:])
        return self._fit() if self.filled == len(self.buffer) else []

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """Fit on what was buffered if the stimuli ran out before ``n_fit``."""
        if self.fitted or self.buffer is None:
            return []
        return self._fit()

    def _fit(self) -> list[tuple[int, np.ndarray]]:
        fit_rows = self.buffer[: self.filled]
        self.reducer.fit(fit_rows)
        out = [(self.start, self.reducer.transform(fit_rows))]
        offset = self.start + self.filled
        for extra in self.overflow:
            out.append((offset, self.reducer.transform(extra)))
            offset += len(extra)
        self.buffer, self.overflow, self.fitted, self.just_fitted = None, [], True, True
        return out


# --------------------------------------------------------------------------
# Where the rows go
# --------------------------------------------------------------------------
class _MemorySink:
    """Rows collected in memory: preallocated when the number of stimuli is known."""

    def __init__(self, n: int | None, specs: dict[str, tuple[tuple, np.dtype]]):
        self.n = n
        self.arrays: dict[str, np.ndarray] = {}
        self.parts: dict[str, list[np.ndarray]] = {}
        for name, (shape, dtype) in specs.items():
            if self.n is None:
                self.parts[name] = []
            else:
                self.arrays[name] = np.empty((self.n,) + tuple(shape), dtype=dtype)

    def write(self, name: str, offset: int, arr: np.ndarray) -> None:
        if self.n is None:
            self.parts[name].append(arr)
        else:
            self.arrays[name][offset : offset + len(arr)] = arr

    def write_state(self, name: str, state: dict[str, np.ndarray]) -> None:
        pass

    def commit(self, n_done: int) -> None:
        pass

    def result(self) -> dict[str, np.ndarray]:
        if self.n is None:
            return {name: np.concatenate(parts) for name, parts in self.parts.items()}
        return self.arrays


def _contiguous_dcpl() -> Any:
    """Contiguous storage allocated at creation: later writes touch raw data only, never HDF5 metadata."""
    import h5py

    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.CONTIGUOUS)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    return dcpl


class _StreamFile:
    """A resumable HDF5 extraction file.

    The file's structure is written once, to a temporary file renamed into
    place, with every dataset contiguous and allocated up front. Streaming
    then only overwrites raw data bytes at fixed offsets: HDF5 metadata never
    changes after creation, so a process killed at any moment leaves a
    readable file. ``n_done`` (a one-element dataset) counts the stimuli
    whose rows are written in every layer, and is updated only after those
    rows are flushed (and fsync-ed) to disk.
    """

    def __init__(self, path: Path):
        import h5py

        self.path = path
        try:
            self.f = h5py.File(path, "r+")
        except OSError as exc:
            raise CorruptFileError(f"Cannot open {path} to resume the extraction: {exc}") from exc
        self.g = self.f[_KEY]
        self.n_done_ds = self.g["n_done"]

    @staticmethod
    def create(
        path: Path,
        specs: dict[str, tuple[tuple, np.dtype]],
        states: dict[str, dict[str, tuple[tuple, np.dtype]]],
        header: dict[str, Any],
    ) -> _StreamFile:
        import h5py

        n = len(header["stimulus_ids"])
        dcpl = _contiguous_dcpl()
        with replaced_atomically(path) as tmp:
            with h5py.File(tmp, "w") as f:
                g = f.create_group(_KEY)
                write_header(g, list(specs), header["stimulus_ids"], header["model"], header["metadata"])
                g.attrs["stream"] = json.dumps(header["signature"])
                g.attrs["input_shapes"] = json.dumps(header["input_shapes"])
                layers = g.create_group("layers")
                for name, (shape, dtype) in specs.items():
                    layers.create_dataset(
                        h5_layer_name(name), shape=(n,) + tuple(shape), dtype=dtype, dcpl=dcpl, track_times=False
                    )
                state_group = g.create_group("state")
                for name, arrays in states.items():
                    sub = state_group.create_group(h5_layer_name(name))
                    for key, (shape, dtype) in arrays.items():
                        sub.create_dataset(key, shape=shape, dtype=dtype, dcpl=dcpl, track_times=False)
                done = g.create_dataset("n_done", shape=(1,), dtype=np.int64, dcpl=dcpl, track_times=False)
                done[0] = 0
        return _StreamFile(path)

    @property
    def n_done(self) -> int:
        return int(self.n_done_ds[0])

    def check_shapes(self, specs: dict[str, tuple[tuple, np.dtype]]) -> None:
        for name, (shape, dtype) in specs.items():
            ds = self.g["layers"][h5_layer_name(name)]
            if ds.shape[1:] != tuple(shape) or ds.dtype != dtype:
                raise StoreError(
                    f"Layer {name!r} now gives {tuple(shape)} {np.dtype(dtype)} per stimulus but {self.path} holds "
                    f"{ds.shape[1:]} {ds.dtype}; the model changed. Pass overwrite=True to start again."
                )

    def read_state(self, name: str) -> dict[str, np.ndarray]:
        sub = self.g["state"][h5_layer_name(name)]
        return {key: sub[key][()] for key in sub}

    def write(self, name: str, offset: int, arr: np.ndarray) -> None:
        self.g["layers"][h5_layer_name(name)][offset : offset + len(arr)] = arr

    def write_state(self, name: str, state: dict[str, np.ndarray]) -> None:
        sub = self.g["state"][h5_layer_name(name)]
        for key, value in state.items():
            sub[key][...] = value

    def commit(self, n_done: int) -> None:
        if n_done <= self.n_done:
            return
        self.f.flush()
        with contextlib.suppress(Exception):  # only the sec2 driver exposes a file descriptor
            os.fsync(self.f.id.get_vfd_handle())
        self.n_done_ds[0] = n_done
        self.f.flush()

    def close(self) -> None:
        if self.f.id.valid:
            self.f.close()


def _read_stream(path: Path) -> dict[str, Any] | None:
    """Header of an existing streamed extraction, or None if ``path`` is not one."""
    import h5py

    check_hdf5(path)
    try:
        with h5py.File(path, "r") as f:
            g = f.get(_KEY)
            if not isinstance(g, h5py.Group) or g.attrs.get("neuroenc_type") != STORE_KIND or "stream" not in g.attrs:
                return None
            ids = g["stimulus_ids"]
            return {
                "signature": json.loads(g.attrs["stream"]),
                "input_shapes": json.loads(g.attrs["input_shapes"]),
                "stimulus_ids": np.asarray(ids.asstr()[()], dtype=object) if ids.dtype.kind == "O" else ids[()],
                "n_done": int(g["n_done"][0]),
                "n_stimuli": int(g.attrs["n_stimuli"]),
            }
    except OSError as exc:
        raise CorruptFileError(f"Cannot read {path} as an extraction file: {exc}") from exc


def _signature_diff(stored: dict, current: dict) -> list[str]:
    labels = {
        "model": "model class",
        "model_sha1": "model weights",
        "layers": "layers",
        "reduce": "reductions",
        "output": "output selectors",
        "n_stimuli": "number of stimuli",
        "first_stimulus_sha1": "stimuli (the first one differs)",
    }
    keys = dict.fromkeys(list(stored) + list(current))
    return [labels.get(k, k) for k in keys if stored.get(k) != current.get(k)]


# --------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------
def list_layers(model: Any, example: Any, *, preprocess: Callable | None = None, device: Any = None) -> pd.DataFrame:
    """The named modules of a network and the shapes of their outputs.

    Runs one forward pass on the first stimulus of ``example`` (or the first
    batch, for loaders and iterables) in eval mode without gradients.

    Parameters
    ----------
    model : torch.nn.Module
        The network; its mode (train/eval, per module) is restored afterwards.
    example : tensor, array, Dataset, DataLoader or iterable of batches
        Stimuli as accepted by :func:`extract_activations`; one is used.
    preprocess : callable, optional
        As in :func:`extract_activations`.
    device : str or torch.device, optional
        Where to run; default the device of the model's parameters.

    Returns
    -------
    pandas.DataFrame
        One row per named module, in registration order, with columns
        ``name``, ``type`` (class name), ``output_type`` (type of the raw
        output), ``output_shape`` (shape of its tensor under the
        :func:`first_tensor` rule, batch axis included; None if the module
        did not run), ``n_units`` (values per stimulus), ``n_calls`` (times
        it ran in the forward pass) and ``n_params`` (parameters, submodules
        included).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten())
    >>> list_layers(net, torch.zeros(4, 3, 10, 10))[["name", "type", "output_shape", "n_units"]]
      name     type  output_shape  n_units
    0    0   Conv2d  (1, 8, 8, 8)      512
    1    1     ReLU  (1, 8, 8, 8)      512
    2    2  Flatten      (1, 512)      512
    """
    torch = _import_torch()
    _check_model(model, torch)
    _, dtype = _model_device_dtype(model, torch)
    modules = [(n, m) for n, m in model.named_modules() if n]
    records = {n: {"output_type": None, "output_shape": None, "n_calls": 0} for n, _ in modules}

    def make_hook(name: str) -> Callable:
        def hook(module: Any, args: Any, output: Any) -> None:
            record = records[name]
            record["n_calls"] += 1
            record["output_type"] = type(output).__name__
            tensor = first_tensor(output)
            record["output_shape"] = tuple(tensor.shape) if tensor is not None else None

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in modules]
    try:
        with _inference(model, device, torch) as target:
            inputs, rows = _Batches(example, 1, preprocess, target, dtype).first()
            _forward(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    rows_out = []
    for name, module in modules:
        record = records[name]
        shape = record["output_shape"]
        n_units = int(np.prod(shape[1:], dtype=np.int64)) if shape and shape[0] == rows else None
        rows_out.append(
            {
                "name": name,
                "type": type(module).__name__,
                "output_type": record["output_type"],
                "output_shape": shape,
                "n_units": n_units,
                "n_calls": record["n_calls"],
                "n_params": int(sum(p.numel() for p in module.parameters())),
            }
        )
    table = pd.DataFrame(
        rows_out, columns=["name", "type", "output_type", "output_shape", "n_units", "n_calls", "n_params"]
    )
    table["n_units"] = table["n_units"].astype("Int64")
    return table


def extract_activations(
    model: Any,
    stimuli: Any,
    layers: str | Sequence[str] | None,
    *,
    batch_size: int = 64,
    device: Any = None,
    reduce: Any = None,
    out: str | os.PathLike | None = None,
    stimulus_ids: Sequence[Any] | None = None,
    preprocess: Callable | None = None,
    output: Callable | Mapping[str, Callable] | None = None,
    overwrite: bool = False,
) -> Activations:
    """Activations of chosen modules of a torch network for every stimulus.

    A forward hook on each chosen module keeps its output while the stimuli
    go through the network batch by batch, in eval mode under
    :func:`torch.no_grad` (dropout off, batch-norm statistics frozen; the
    mode of every module is restored afterwards). With the same inputs,
    weights and ``batch_size`` the result is the same on every run.

    Parameters
    ----------
    model : torch.nn.Module
        Any network.
    stimuli : tensor, numpy array, Dataset, DataLoader or iterable of batches
        Tensors and arrays hold one stimulus per row (first axis) and are
        cut into batches of ``batch_size``; a map-style ``Dataset`` is
        batched the same way (``default_collate``); a ``DataLoader`` (without
        shuffling) or ``IterableDataset`` gives its own batches; any other
        iterable yields batches. A batch that is a tuple or list (such as
        ``(images, labels)``) contributes its first element; a dict batch is
        passed as keyword arguments (``model(**batch)``). Floating inputs are
        cast to the dtype of the model's parameters and moved to ``device``.
    layers : str, sequence of str or None
        Names of modules as in ``model.named_modules()`` (see
        :func:`list_layers`), or globs where ``*`` stays within one dotted
        segment and ``**`` spans segments: ``"features.*"`` (the children of
        ``features``), ``"encoder.layers.*.linear2"``, ``"**.relu"``. None:
        every leaf module. Unknown names raise an error listing close matches.
    batch_size : int
        Stimuli per forward pass (for tensors, arrays and map-style datasets).
    device : str or torch.device, optional
        Where to run; default the device of the model's parameters. A model
        elsewhere is moved there for the extraction and moved back after.
    reduce : {"flatten", "mean", "srp", "pca"}, Reducer, callable, dict or None
        Reduction applied to every batch (see
        :mod:`neuroenc.activations.reduce`): a name (default parameters), a
        reducer instance (copied per layer), a callable ``f(batch) ->
        (batch, ...)``, or a dict ``{layer name or glob: any of these}``
        (unmatched layers are kept whole). ``"pca"`` buffers the first
        ``n_fit`` stimuli of the layer to fit on them.
    out : path-like, optional
        Stream every batch to this HDF5 file (one dataset per layer, in
        group ``"activations"``) instead of memory: peak memory is one batch
        of activations (plus PCA buffers), whatever the number of stimuli.
        If the file holds an interrupted extraction with the same model
        weights, layers, reductions, output selectors, stimulus count, ids
        and first stimulus, it resumes where it stopped; a different one
        raises :class:`~neuroenc.errors.StoreError` unless ``overwrite``.
    stimulus_ids : sequence of int or str, optional
        One unique id per stimulus; default ``0..n-1``. Needed with ``out``
        when the number of stimuli is not known in advance (iterables).
    preprocess : callable, optional
        Applied to every raw batch before the rules above, e.g. normalisation
        or picking the inputs of a batch; must be deterministic.
    output : callable or dict, optional
        Selects the tensor of a module's output (a tuple, a dict...); default
        :func:`first_tensor`. One callable for all layers or a dict
        ``{layer name or glob: callable}``. The selected tensor's first axis
        must be the batch axis.
    overwrite : bool
        Replace ``out`` instead of resuming from it.

    Returns
    -------
    Activations
        Layers in the order they ran (depth order). With ``out``, the layers
        stay in the file and are read on access (see
        :meth:`Activations.from_hdf5`); ``metadata`` records the reductions.

    Raises
    ------
    UnknownNameError
        Unknown layer names or reduction names, before any work.
    StoreError
        ``out`` holds another extraction (names what differs).
    ShapeError, NonFiniteError, LabelError
        Bad stimuli, outputs without a batch axis, NaN/Inf in inputs or
        outputs, stimulus ids that do not match the stimuli.

    Notes
    -----
    A module that runs several times in one forward pass (a reused
    activation module) keeps its last output, with a warning. A module that
    does not run raises an error: fused fast paths, such as
    ``nn.TransformerEncoderLayer`` in eval mode, skip their submodules.

    Resuming works at stimulus granularity: an interrupted run loses at
    most the batch in progress, and rows are written at their position, so
    a rerun never duplicates rows. Use the same ``batch_size`` to get
    bit-identical values (batched arithmetic may differ in the last bits).

    Examples
    --------
    >>> import torch
    >>> from neuroenc.activations.extract import extract_activations
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(5))
    >>> images = torch.randn(20, 3, 16, 16)
    >>> act = extract_activations(net, images, ["0", "3"], batch_size=8, reduce={"0": "mean"})
    >>> act.shapes
    {'0': (20, 8), '3': (20, 5)}
    >>> big = extract_activations(net, images, "*", out="acts.h5", reduce="flatten")  # doctest: +SKIP
    """
    torch = _import_torch()
    _check_model(model, torch)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ShapeError(f"batch_size must be a positive integer, got {batch_size!r}.")
    names = _select_layers(model, layers)
    reducers = resolve_reducers(reduce, names)
    selectors = per_layer(output, names, "output")
    for name, selector in selectors.items():
        if selector is not None and not callable(selector):
            raise ShapeError(f"output for layer {name!r} must be callable, got {type(selector).__name__}.")
    path = Path(out).expanduser() if out is not None else None
    if path is not None and not path.parent.is_dir():
        raise MissingFileError(f"Folder does not exist: {path.parent}")

    if stimulus_ids is not None and not hasattr(stimulus_ids, "__len__"):
        stimulus_ids = list(stimulus_ids)  # a generator of ids
    _, dtype = _model_device_dtype(model, torch)
    with _inference(model, device, torch) as target:
        batches = _Batches(stimuli, batch_size, preprocess, target, dtype)
        n = _n_stimuli(batches.n, stimulus_ids)
        ids = None if n is None else check_stimulus_ids(stimulus_ids, n)
        for name, reducer in reducers.items():
            if reducer is not None and n is not None and n < reducer.min_fit_stimuli:
                raise ShapeError(
                    f"The reduction {reducer!r} of layer {name!r} needs at least {reducer.min_fit_stimuli} "
                    f"stimuli to fit; there are {n}."
                )
        metadata = {
            "source": "neuroenc.activations.extract_activations",
            "reduce": {k: (r.config() if r is not None else None) for k, r in reducers.items()},
            "output": {k: _callable_name(s) for k, s in selectors.items()},
            "batch_size": int(batch_size),
        }
        runner = _Runner(model, names, reducers, selectors, n, torch)
        try:
            if path is None:
                arrays = runner.run(batches, 0, lambda: _MemorySink(n, runner.specs)).result()
                ids = check_stimulus_ids(stimulus_ids, runner.n_seen) if ids is None else ids
                # Inputs and outputs were checked batch by batch; no second pass over the arrays.
                return Activations._from_checked(
                    {name: arrays[name] for name in runner.order}, ids, _describe(model), metadata
                )
            if n is None:
                raise LabelError(
                    "out= needs the number of stimuli before the run; pass stimulus_ids (one per stimulus) "
                    "for stimuli given as an iterable of batches."
                )
            header = {
                "stimulus_ids": ids,
                "model": _describe(model),
                "metadata": metadata,
                "signature": {
                    "model": _describe(model),
                    "model_sha1": _model_digest(model, torch),
                    "layers": names,
                    "reduce": metadata["reduce"],
                    "output": metadata["output"],
                    "n_stimuli": n,
                    "first_stimulus_sha1": _fingerprint(batches.first()[0], torch),
                },
            }
            with file_lock(path):  # a second writer waits, then resumes or finds the file complete
                _stream(runner, batches, path, header, overwrite)
        finally:
            runner.remove()
    return Activations.from_hdf5(path, _KEY)


def _n_stimuli(known: int | None, stimulus_ids: Any) -> int | None:
    """Number of stimuli from the stimuli themselves or from their ids."""
    if stimulus_ids is None:
        return known
    if isinstance(stimulus_ids, str):
        raise LabelError("stimulus_ids must be a sequence of ids, not one string.")
    n_ids = len(stimulus_ids)
    if known is not None and n_ids != known:
        raise LabelError(f"stimulus_ids has {n_ids} entries but there are {known} stimuli.")
    return n_ids


def _stream(runner: _Runner, batches: _Batches, path: Path, header: dict, overwrite: bool) -> None:
    """Create or resume the extraction file at ``path`` and fill it."""
    existing = _existing_stream(path, overwrite)
    n = len(header["stimulus_ids"])
    if existing is None:

        def create() -> _StreamFile:
            header["input_shapes"] = runner.input_shapes
            return _StreamFile.create(path, runner.specs, runner.state_specs(), header)

        stream = runner.run(batches, 0, create)
        stream.close()
        return
    _check_resume(path, existing, header["signature"], header["stimulus_ids"])
    if existing["n_done"] >= n:
        return
    stream = _StreamFile(path)
    try:
        runner.resume(stream, existing["input_shapes"])
        runner.run(batches, stream.n_done, lambda: stream)
    finally:
        stream.close()


def _callable_name(func: Callable | None) -> str | None:
    if func is None:
        return None
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def _existing_stream(path: Path, overwrite: bool) -> dict | None:
    """The header of a resumable file at ``path``; None when there is none or it is to be replaced."""
    if not path.exists():
        return None
    if overwrite:
        return None
    try:
        existing = _read_stream(path)
    except (CorruptFileError, MissingFileError) as exc:
        raise StoreError(f"{exc} Pass overwrite=True to replace it.") from None
    if existing is None:
        raise StoreError(
            f"{path} exists and is not a resumable extraction (e.g. written by to_hdf5); pass overwrite=True "
            "to replace it."
        )
    return existing


def _check_resume(path: Path, existing: dict, signature: dict, ids: np.ndarray) -> None:
    differ = _signature_diff(existing["signature"], signature)
    stored_ids = existing["stimulus_ids"]
    if len(stored_ids) != len(ids) or not all(a == b for a, b in zip(stored_ids.tolist(), ids.tolist())):
        differ.append("stimulus ids")
    if differ:
        raise StoreError(
            f"{path} holds an extraction made with other arguments (differs in: {', '.join(differ)}); "
            "pass overwrite=True to start again, or another out= path."
        )


class _Runner:
    """Forward passes, hooks and per-layer reduction streams of one extraction."""

    def __init__(self, model: Any, names: list[str], reducers: dict, selectors: dict, n: int | None, torch: Any):
        self.model = model
        self.n = n
        self.streams = {name: _LayerStream(name, reducers[name], n) for name in names}
        self.hooks = _Hooks(model, names, selectors, torch)
        self.order: list[str] = []
        self.specs: dict[str, tuple[tuple, np.dtype]] = {}
        self.input_shapes: dict[str, list[int]] = {}
        self.input_dtypes: dict[str, np.dtype] = {}
        self.written: dict[str, int] = dict.fromkeys(names, 0)
        self.n_seen = 0
        self.resumed: _StreamFile | None = None

    def resume(self, stream: _StreamFile, input_shapes: dict[str, list[int]]) -> None:
        """Continue a file: rows before ``n_done`` exist; learned reducers get their stored state."""
        done = stream.n_done
        self.written = dict.fromkeys(self.streams, done)
        self.resumed = stream
        if done == 0:
            return
        for name, layer in self.streams.items():
            if layer.reducer is not None and layer.reducer.n_fit is not None:
                layer.reducer.set_state(tuple(input_shapes[name]), stream.read_state(name))
                layer.fitted = True

    def run_batch(self, inputs: Any, offset: int, rows: int) -> dict[str, list[tuple[int, np.ndarray]]]:
        self.hooks.reset()
        _forward(self.model, inputs)
        arrays = self.hooks.collect(rows, offset)
        first = not self.order
        if first:
            self.order = list(arrays)
        emitted = {name: self.streams[name].push(offset, arrays[name]) for name in self.order}
        if first:
            for name in self.order:
                arr = arrays[name]
                self.input_shapes[name] = list(arr.shape[1:])
                self.input_dtypes[name] = arr.dtype
                spec = self.streams[name].out_spec(tuple(arr.shape[1:]), arr.dtype)
                if emitted[name]:
                    out = emitted[name][0][1]
                    spec = (tuple(out.shape[1:]), out.dtype)
                elif spec is None:
                    raise ShapeError(
                        f"The reducer of layer {name!r} learns from n_fit stimuli but its output_shape() "
                        "returns None; implement output_shape."
                    )
                self.specs[name] = spec
            if self.resumed is not None:
                self.resumed.check_shapes(self.specs)
        self.n_seen = max(self.n_seen, offset + rows)
        return emitted

    def run(self, batches: _Batches, start: int, make_sink: Callable[[], Any]) -> Any:
        """Every batch from stimulus ``start`` into the sink ``make_sink()`` builds after the first batch."""
        sink = None
        try:
            for offset, inputs, rows in batches(start):
                if self.n is not None and offset + rows > self.n:
                    raise LabelError(f"The stimuli hold more than the {self.n} stimuli expected (from stimulus_ids).")
                emitted = self.run_batch(inputs, offset, rows)
                if sink is None:  # the output shapes are known after the first batch
                    sink = make_sink()
                self.deliver(sink, emitted)
            if sink is None:
                raise EmptySelectionError("The stimuli yielded no batch.")
            self.deliver(sink, self.finish())
        except BaseException:
            if isinstance(sink, _StreamFile):
                sink.close()
            raise
        if self.n is not None and self.n_seen != self.n:
            if isinstance(sink, _StreamFile):
                sink.close()
            raise LabelError(
                f"The stimuli held {self.n_seen} stimuli but {self.n} were expected (from stimulus_ids or their "
                "length)."
            )
        return sink

    def state_specs(self) -> dict[str, dict[str, tuple[tuple, np.dtype]]]:
        specs = {}
        for name, layer in self.streams.items():
            if layer.reducer is not None and layer.reducer.n_fit is not None:
                specs[name] = layer.reducer.state_shapes(tuple(self.input_shapes[name]), self.input_dtypes[name])
        return specs

    def finish(self) -> dict[str, list[tuple[int, np.ndarray]]]:
        return {name: layer.finish() for name, layer in self.streams.items()}

    def deliver(self, sink: Any, emitted: dict[str, list[tuple[int, np.ndarray]]]) -> None:
        """Write emitted rows and newly fitted reducer states, then advance ``n_done``."""
        for name, parts in emitted.items():
            for offset, arr in parts:
                expected = self.specs[name][0]
                if tuple(arr.shape[1:]) != tuple(expected):
                    raise ShapeError(
                        f"The reduction of layer {name!r} returned {tuple(arr.shape[1:])} per stimulus for the batch "
                        f"at stimulus {offset}, but {tuple(expected)} before; it must not depend on the batch."
                    )
                sink.write(name, offset, arr)
                self.written[name] = max(self.written[name], offset + len(arr))
            layer = self.streams[name]
            if layer.just_fitted:
                sink.write_state(name, layer.reducer.get_state())
                layer.just_fitted = False
        sink.commit(min(self.written.values()))

    def remove(self) -> None:
        self.hooks.remove()
