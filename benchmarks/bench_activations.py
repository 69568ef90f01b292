"""Benchmark of activation extraction: bounded memory when streaming, speed against plain hooks.

1. Memory. A conv net whose first layer outputs 64 x 64 x 64 float32 values
   (1 MiB) per 3 x 64 x 64 image; for 2304 images that layer alone is
   2.25 GiB, more than 2 GB. ``extract_activations(..., out=file)`` streams
   it to HDF5 (and, in a second run, reduces it by a sparse random projection).
   Each run is a fresh subprocess; its peak resident memory
   (``resource.getrusage``) is compared with the size of the activations.
2. Time. On 256 images (activations that fit in memory): neuroenc in
   memory and streamed to HDF5, against the straightforward reference,
   forward hooks appending to lists and ``np.concatenate`` at the end.

Run: ``python benchmarks/bench_activations.py`` (about a minute on 2 cores,
about 2.5 GB of temporary disk space, deleted at the end).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_time, print_table  # noqa: E402

N_BIG = 2304
N_SMALL = 256
BATCH = 64
LAYERS = ["conv1", "conv2", "fc"]


def make_model():
    import torch
    from torch import nn

    class WideConvNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 3, padding=1)  # 64 x 64 x 64 values per image
            self.pool1 = nn.MaxPool2d(4)
            self.conv2 = nn.Conv2d(64, 32, 3, padding=1)
            self.pool2 = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(32, 100)

        def forward(self, x):
            h = self.pool1(torch.relu(self.conv1(x)))
            return self.fc(self.pool2(torch.relu(self.conv2(h))).flatten(1))

    torch.manual_seed(0)
    return WideConvNet()


def random_images():
    import torch

    class RandomImages(torch.utils.data.Dataset):
        """Images generated per index, so that the stimuli themselves take no memory."""

        def __init__(self, n: int) -> None:
            self.n = n

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, i: int):
            return torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(i))

    return RandomImages


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(mode: str, out: str) -> None:
    """One streamed extraction of N_BIG images; prints a JSON line of measurements."""
    import torch

    from neuroenc.activations.extract import extract_activations
    from neuroenc.activations.reduce import SparseRandomProjection

    torch.set_num_threads(2)
    model = make_model()
    stimuli = random_images()(N_BIG)
    with torch.no_grad():
        model(torch.rand(BATCH, 3, 64, 64))  # allocator warm-up counted in the baseline
    base = peak_rss_mib()
    reduce = {"conv1": SparseRandomProjection(1024, random_state=0)} if mode == "srp" else None
    t0 = time.perf_counter()
    act = extract_activations(model, stimuli, LAYERS, batch_size=BATCH, out=out, reduce=reduce)
    seconds = time.perf_counter() - t0
    raw = N_BIG * (64 * 64 * 64 + 32 * 16 * 16 + 100) * 4
    stored = sum(int(np.prod(s)) for s in act.shapes.values()) * 4
    print(json.dumps({"base": base, "peak": peak_rss_mib(), "seconds": seconds, "raw": raw, "stored": stored}))


def reference_hooks(model, x, batch_size: int) -> dict[str, np.ndarray]:
    """The straightforward way: hooks append each batch to a list, concatenated at the end."""
    import torch

    modules = dict(model.named_modules())
    store: dict[str, list[np.ndarray]] = {name: [] for name in LAYERS}
    handles = [
        modules[name].register_forward_hook(lambda m, i, o, name=name: store[name].append(o.detach().cpu().numpy()))
        for name in LAYERS
    ]
    model.eval()
    try:
        with torch.no_grad():
            for a in range(0, len(x), batch_size):
                model(x[a : a + batch_size])
    finally:
        for h in handles:
            h.remove()
    return {name: np.concatenate(parts) for name, parts in store.items()}


def main() -> None:
    import torch

    from neuroenc.activations.extract import extract_activations

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(dir=Path(tempfile.gettempdir())) as tmp:
        print(f"Streaming {N_BIG} images of 3x64x64 through a conv net (batch {BATCH}), one process per run:")
        print(f"{'case':<34} {'activations':>12} {'stored':>10} {'peak RSS':>10} {'RSS increase':>13} {'time':>8}")
        for mode in ("flatten", "srp"):
            out = Path(tmp) / f"{mode}.h5"
            proc = subprocess.run(
                [sys.executable, __file__, "--child", mode, str(out)], check=True, capture_output=True, text=True
            )
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            case = "out=file, conv1 whole" if mode == "flatten" else "out=file, conv1 -> SRP 1024"
            print(
                f"{case:<34} {r['raw'] / 2**30:9.2f} GiB {r['stored'] / 2**30:6.2f} GiB {r['peak']:7.0f} MiB "
                f"{r['peak'] - r['base']:9.0f} MiB {r['seconds']:7.1f}s"
            )
            out.unlink()

        model = make_model()
        x = torch.stack([random_images()(N_SMALL)[i] for i in range(N_SMALL)])
        size = N_SMALL * (64 * 64 * 64 + 32 * 16 * 16 + 100) * 4 / 2**20
        print(f"\nTime on {N_SMALL} images ({size:.0f} MiB of activations), median of 5 runs:")
        ref = reference_hooks(model, x, BATCH)
        ours = extract_activations(model, x, LAYERS, batch_size=BATCH)
        assert all(np.array_equal(ours[n], ref[n]) for n in LAYERS)
        out = Path(tmp) / "small.h5"
        t_ref = median_time(lambda: reference_hooks(model, x, BATCH), repeat=5)
        t_mem = median_time(lambda: extract_activations(model, x, LAYERS, batch_size=BATCH), repeat=5)
        t_h5 = median_time(
            lambda: extract_activations(model, x, LAYERS, batch_size=BATCH, out=out, overwrite=True), repeat=3
        )
        print_table(
            [
                ("extract_activations, in memory", t_mem, t_ref, "hooks + lists + np.concatenate"),
                ("extract_activations, out=HDF5 (fsync per batch)", t_h5, t_ref, "hooks + lists + np.concatenate"),
            ]
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
