"""Model selection with RSA and topological RSA: which layer generated the data?

A small offline version of the simulation of Lin & Kriegeskorte ("The
Topology and Geometry of Neural Representations"):

1. Train ``--networks`` small MLPs (numpy, 5 hidden tanh layers of 64 units)
   from different random seeds on the same task: 8 classes of 16-d inputs
   in 2 super-classes, cross-entropy, Adam.
2. Stimuli: 48 held-out inputs (6 per class). The representation of a layer
   is its activation pattern for each stimulus.
3. Data: for every network A and layer l (the ground truth), ``--draws``
   noisy measurements: activations + Gaussian noise whose standard deviation
   is ``noise`` times the layer's activation standard deviation; RDM =
   Euclidean distances between the noisy patterns.
4. Candidate models: the noise-free RDMs of every layer of every *other*
   network B. For each statistic (the RDM, geo-topological RGTMs, geodesic
   RGDMs; applied alike to data and models), each measurement is compared
   with the 5 layers of B (Pearson correlation).

Per statistic and noise level:

* sensitivity: how often the same layer of the other network is the best
  match (top-1 layer identification; chance 1/5 = 0.20);
* specificity: how often a wrong layer matches worse than the same layer
  (pairwise rejection of non-matching layers; chance 0.50).

Run: ``python benchmarks/trsa_model_selection.py`` (about 15 s on 2 cores;
``--quick`` for a 2-second smoke run). Prints an RST table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.spatial.distance import pdist

from neuroenc.rsa.comparisons import compare_vectors
from neuroenc.rsa.topology import geodesic, geotopological

N_CLASSES = 8
N_INPUT = 16
N_HIDDEN = 64
N_LAYERS = 5

#: statistic name -> transform of an (n_rdms, n_pairs) array of RDM vectors
STATISTICS = {
    "RDM": lambda v: v,
    "RGTM(0.1, 0.9)": lambda v: geotopological(v, 0.1, 0.9),
    "RGTM(0, 0.5)": lambda v: geotopological(v, 0.0, 0.5),
    "adjacency (0.3)": lambda v: geotopological(v, 0.3, 0.3),
    "RGDM(0, 0.9)": lambda v: geodesic(geotopological(v, 0.0, 0.9), disconnected="beyond"),
    "RGDM(0.1, 0.9)": lambda v: geodesic(geotopological(v, 0.1, 0.9), disconnected="beyond"),
    "RGDM(0.1, 0.9) zero_edges=False": lambda v: geodesic(
        geotopological(v, 0.1, 0.9), zero_edges=False, disconnected="beyond"
    ),
}


# ----------------------------------------------------------------------
# task and networks
def make_task(rng: np.random.Generator, n_per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes around centres that share a super-class offset (two super-classes)."""
    task = np.random.default_rng(12345)  # the same task for every network
    super_centres = task.standard_normal((2, N_INPUT)) * 2.0
    centres = super_centres[np.arange(N_CLASSES) // 4] + task.standard_normal((N_CLASSES, N_INPUT))
    y = np.repeat(np.arange(N_CLASSES), n_per_class)
    X = centres[y] + 0.9 * rng.standard_normal((y.size, N_INPUT))
    return X, y


def init_network(rng: np.random.Generator) -> list[np.ndarray]:
    """Weights and biases ``[W0, b0, W1, b1, ...]``."""
    sizes = [N_INPUT] + [N_HIDDEN] * N_LAYERS + [N_CLASSES]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params += [rng.standard_normal((a, b)) / np.sqrt(a), np.zeros(b)]
    return params


def forward(params: list[np.ndarray], X: np.ndarray) -> list[np.ndarray]:
    """Activations of every layer (input first); the last entry is the logits."""
    acts = [X]
    n_layers = len(params) // 2
    for k in range(n_layers):
        z = acts[-1] @ params[2 * k] + params[2 * k + 1]
        acts.append(z if k == n_layers - 1 else np.tanh(z))
    return acts


def gradients(params: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Gradient of the mean cross-entropy by backpropagation."""
    acts = forward(params, X)
    logits = acts[-1] - acts[-1].max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    delta = (p - np.eye(N_CLASSES)[y]) / len(y)
    grads = [np.empty(0)] * len(params)
    for k in range(len(params) // 2 - 1, -1, -1):
        grads[2 * k], grads[2 * k + 1] = acts[k].T @ delta, delta.sum(axis=0)
        if k:
            delta = (delta @ params[2 * k].T) * (1.0 - acts[k] ** 2)  # tanh' = 1 - tanh**2
    return grads


def train(seed: int, X: np.ndarray, y: np.ndarray, steps: int, batch: int = 64, lr: float = 3e-3) -> list:
    """Adam on mini-batches; the seed sets the initial weights and the batch order."""
    rng = np.random.default_rng(seed)
    params = init_network(rng)
    m = [np.zeros_like(w) for w in params]
    v = [np.zeros_like(w) for w in params]
    for t in range(1, steps + 1):
        idx = rng.integers(0, len(y), batch)
        for w, g, mk, vk in zip(params, gradients(params, X[idx], y[idx]), m, v):
            mk += 0.1 * (g - mk)
            vk += 0.001 * (g * g - vk)
            w -= lr * (mk / (1 - 0.9**t)) / (np.sqrt(vk / (1 - 0.999**t)) + 1e-8)
    return params


# ----------------------------------------------------------------------
# model selection
def evaluate(layers: np.ndarray, noise_levels, n_draws: int, rng: np.random.Generator) -> dict:
    """``{(statistic, noise): (sensitivity, specificity)}``; ``layers`` is (networks, layers, stimuli, units)."""
    n_net, n_layer = layers.shape[:2]
    models = np.array([[pdist(a) for a in net] for net in layers])  # (networks, layers, pairs)
    scale = layers.std(axis=(2, 3))  # activation spread of each layer
    results = {}
    for noise in noise_levels:
        noisy = layers[:, :, None] + noise * scale[:, :, None, None, None] * rng.standard_normal(
            (n_net, n_layer, n_draws) + layers.shape[2:]
        )
        data = np.array([pdist(x) for x in noisy.reshape((-1,) + layers.shape[2:])])
        for name, transform in STATISTICS.items():
            d = transform(data).reshape(n_net, n_layer, n_draws, -1)
            m = transform(models.reshape(n_net * n_layer, -1)).reshape(n_net, n_layer, -1)
            hits, rejections, n_cases = 0, 0, 0
            for a in range(n_net):
                for b in range(n_net):
                    if a == b:
                        continue
                    # similarity of each measurement of A (layer, draw) with each layer of B
                    sim = compare_vectors(d[a].reshape(n_layer * n_draws, -1), m[b], "pearson")
                    sim = sim.reshape(n_layer, n_draws, n_layer)
                    truth = np.arange(n_layer)[:, None]
                    same = np.take_along_axis(sim, np.broadcast_to(truth[:, :, None], (n_layer, n_draws, 1)), 2)
                    best = sim.argmax(axis=2)
                    hits += int((best == truth).sum())
                    wrong = np.arange(n_layer)[None, None, :] != truth[:, :, None]
                    rejections += int(((sim < same) & wrong).sum())
                    n_cases += n_layer * n_draws
            results[name, noise] = (hits / n_cases, rejections / (n_cases * (n_layer - 1)))
    return results


def print_rst_table(results: dict, noise_levels) -> None:
    names = list(STATISTICS)
    width = max(map(len, names))
    cols = [f"noise {n:g}" for n in noise_levels]
    rule = "=" * width + "  " + "  ".join("=" * 11 for _ in cols)
    print(rule)
    print(f"{'statistic':<{width}}  " + "  ".join(f"{c:>11}" for c in cols))
    print(rule)
    for name in names:
        cells = [f"{results[name, n][0]:.2f} / {results[name, n][1]:.2f}" for n in noise_levels]
        print(f"{name:<{width}}  " + "  ".join(f"{c:>11}" for c in cells))
    print(rule)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=6, help="networks (random seeds)")
    parser.add_argument("--draws", type=int, default=20, help="noisy measurements per network and layer")
    parser.add_argument("--steps", type=int, default=3000, help="training steps per network")
    parser.add_argument("--quick", action="store_true", help="3 networks, 5 draws, 500 steps")
    args = parser.parse_args()
    if args.quick:
        args.networks, args.draws, args.steps = 3, 5, 500
    noise_levels = (0.5, 1.0, 2.0, 4.0, 8.0)

    t0 = time.perf_counter()
    X, y = make_task(np.random.default_rng(0), 200)
    X_test, y_test = make_task(np.random.default_rng(1), 6)
    layers, accuracy = [], []
    for seed in range(args.networks):
        params = train(seed, X, y, args.steps)
        acts = forward(params, X_test)
        layers.append(np.array(acts[1 : N_LAYERS + 1]))
        accuracy.append(np.mean(acts[-1].argmax(axis=1) == y_test))
    t_train = time.perf_counter() - t0
    results = evaluate(np.array(layers), noise_levels, args.draws, np.random.default_rng(2))
    t_all = time.perf_counter() - t0

    print(
        f"{args.networks} networks ({N_LAYERS} hidden layers of {N_HIDDEN}), test accuracy "
        f"{np.min(accuracy):.2f}-{np.max(accuracy):.2f}; {len(y_test)} stimuli, {args.draws} draws; "
        f"trained in {t_train:.1f} s, total {t_all:.1f} s"
    )
    print(f"sensitivity / specificity (chance {1 / N_LAYERS:.2f} / 0.50); noise = std relative to the layer's\n")
    print_rst_table(results, noise_levels)


if __name__ == "__main__":
    main()
