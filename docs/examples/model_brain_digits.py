"""Which layer of a network matches which brain region? From a torch model to a layer-score plot.

A small convolutional network is trained on scikit-learn's handwritten digits
(shipped with scikit-learn, so this runs offline) with two random seeds. The
activations of its layers for 100 held-out digits are extracted with forward
hooks and scored against fMRI-like responses with RSA and an encoding model;
the best layer of each region is chosen on training folds and scored on
held-out digits, and the scores are divided by the noise ceiling from the
repeated presentations (runs).

No fMRI data of digits exist, so the "brain" is simulated: voxels of an
"early" region are noisy linear read-outs of the first convolution of a
second network (another seed), those of a "late" region read out its
output layer (the class evidence), measured in 4 runs. Replace ``brain`` by your own
BrainData (one observation per stimulus presentation, ``condition`` = the
stimulus id) to score your model against your data.
"""

import os

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits

from neuroenc.activations.extract import extract_activations
from neuroenc.braindata import BrainData
from neuroenc.similarity.layer_scores import score_layers

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
pd.set_option("display.width", 120)

# ---- data: 1797 8x8 digits; the last 100 (10 per class) are the "stimuli"
digits = load_digits()
images = torch.tensor(digits.images / 16.0, dtype=torch.float32)[:, None]  # (1797, 1, 8, 8)
labels = torch.tensor(digits.target)
stim_rows = np.concatenate([np.flatnonzero(digits.target == d)[-10:] for d in range(10)])
train_rows = np.setdiff1d(np.arange(len(labels)), stim_rows)
stimulus_ids = [f"digit{d}_{i}" for d in range(10) for i in range(10)]


def train_network(seed: int) -> torch.nn.Module:
    """A 2-conv + 2-linear network trained for 8 epochs of minibatch Adam (about 1 s)."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential()
    net.add_module("conv1", torch.nn.Conv2d(1, 8, 3, padding=1))
    net.add_module("relu1", torch.nn.ReLU())
    net.add_module("conv2", torch.nn.Conv2d(8, 16, 3, padding=1))
    net.add_module("relu2", torch.nn.ReLU())
    net.add_module("pool", torch.nn.MaxPool2d(2))
    net.add_module("flatten", torch.nn.Flatten())
    net.add_module("fc1", torch.nn.Linear(16 * 4 * 4, 64))
    net.add_module("relu3", torch.nn.ReLU())
    net.add_module("fc2", torch.nn.Linear(64, 10))
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    x, y = images[train_rows], labels[train_rows]
    for _ in range(8):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
            optimiser.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net(images[stim_rows]).argmax(1) == labels[stim_rows]).float().mean().item()
    print(f"seed {seed}: accuracy on the 100 held-out digits {accuracy:.2f}")
    return net


layer_names = ["relu1", "relu2", "pool", "relu3", "fc2"]
nets = {seed: train_network(seed) for seed in (0, 1)}
acts = {
    seed: extract_activations(net, images[stim_rows], layer_names, stimulus_ids=stimulus_ids)
    for seed, net in nets.items()
}
print(acts[0])

# ---- simulated fMRI: 2 regions x 30 voxels, 4 runs, each digit once per run in random order
rng = np.random.default_rng(0)
sources = {"early": acts[1].flattened("relu1"), "late": acts[1].flattened("fc2")}
signal = []
for source in sources.values():
    z = (source - source.mean(0)) / (source.std(0) + 1e-8)
    signal.append(z @ rng.standard_normal((z.shape[1], 30)) / np.sqrt(z.shape[1]))
signal = np.concatenate(signal, axis=1)  # (100 stimuli, 60 voxels)
observations, obs = [], []
for run in range(4):
    order = rng.permutation(100)
    observations.append(signal[order] + 1.0 * rng.standard_normal(signal.shape))
    obs.append(pd.DataFrame({"condition": np.asarray(stimulus_ids)[order], "run": run}))
brain = BrainData(np.concatenate(observations), pd.concat(obs, ignore_index=True), "fmri")
rois = {"early": np.arange(30), "late": np.arange(30, 60)}
print(brain)

# ---- score every layer of the seed-0 network against both regions
for method in ("rsa", "encoding"):
    result = score_layers(acts[0], brain, method, rois=rois, cv=5, random_state=0)
    print(f"\n{method}: held-out score of every layer (mean over 5 folds)")
    summary = result.summary()[["roi", "layer", "train_score", "test_score", "normalized_score", "n_selected"]]
    print(summary.round(2).to_string(index=False))
    print(f"{method}: layer chosen on the training folds, scored on the held-out digits")
    selected = result.selected()[["roi", "best_layer", "score", "sem", "ceiling", "normalized_score"]]
    print(selected.round(2).to_string(index=False))
    if os.environ.get("NEUROENC_SAVE_FIGURES"):
        result.plot().savefig(f"model_brain_digits_{method}.png", dpi=120)

# ---- the same question between two networks: which seed-0 layer matches each seed-1 layer?
print("\nCKA across seeds: seed-1 layer -> best seed-0 layer (chosen on training folds)")
rows = []
for name in layer_names:
    cross = score_layers(acts[0], acts[1].flattened(name), "cka", cv=5, random_state=0)
    chosen = cross.selected().iloc[0]
    rows.append({"seed-1 layer": name, "best seed-0 layer": chosen["best_layer"], "held-out CKA": chosen["score"]})
print(pd.DataFrame(rows).round(2).to_string(index=False))
