"""Layers of a random-weight convolutional network against human IT (92 images, Kriegeskorte et al. 2008).

The 92 object images are converted to grey, resized to 64 x 64 pixels and
passed through a small convolutional network with random weights (untrained
networks are a standard baseline: their early layers are Gabor-like filter
banks). Every layer's RDM (correlation distance) is compared by Spearman
correlation with the human IT fMRI RDMs of 4 subjects (2 sessions each,
averaged per subject). The best layer is chosen on 3 subjects and scored on
the fourth (leave one subject out), and scores are divided by the lower noise
ceiling of the held-out subject (its RDM against the pool of the others).
The HMAX model RDM of the same study is evaluated on the same subjects for
comparison.
"""

import os

import numpy as np
import pandas as pd
import torch
from scipy.io import loadmat

from neuroenc.activations.extract import extract_activations
from neuroenc.datapath import data_path
from neuroenc.rsa.inference import evaluate
from neuroenc.rsa.rdms import RDMs
from neuroenc.similarity.layer_scores import score_layers

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
pd.set_option("display.width", 120)

folder = data_path("rsa92")
stimuli = loadmat(folder / "Kriegeskorte_Neuron2008_supplementalData.mat")["stimuli_92objs"][0]
rgb = np.stack([s["image"] for s in stimuli]).astype(np.float32) / 255.0  # (92, 175, 175, 3)
grey = torch.tensor(rgb.mean(axis=3))[:, None]  # (92, 1, 175, 175)
images = torch.nn.functional.interpolate(grey, size=(64, 64), mode="area")
images = (images - images.mean()) / images.std()
ids = [f"img{i:02d}" for i in range(92)]

brain = loadmat(folder / "92_brainRDMs.mat")["RDMs"]  # (1, 4, 2): subjects x sessions
mats = np.stack([brain[0, s, k]["RDM"] for s in range(4) for k in range(2)]).astype(float)
subjects = [str(brain[0, s, 0]["name"][0]).split("|")[1].strip() for s in range(4) for _ in range(2)]
hit = RDMs(mats, conditions=ids, metadata={"subject": subjects, "session": [1, 2] * 4}, method="hIT fMRI")
models = loadmat(folder / "92_modelRDMs.mat")["Models"][0]
hmax = [m for m in models if str(m["name"][0]) == "HMAX"][0]
hmax = RDMs(np.asarray(hmax["RDM"], dtype=float), conditions=ids, metadata={"model": "HMAX"})
print(hit)

net = torch.nn.Sequential()
net.add_module("conv1", torch.nn.Conv2d(1, 16, 7, stride=2, padding=3))
net.add_module("relu1", torch.nn.ReLU())
net.add_module("pool1", torch.nn.MaxPool2d(2))
net.add_module("conv2", torch.nn.Conv2d(16, 32, 5, padding=2))
net.add_module("relu2", torch.nn.ReLU())
net.add_module("pool2", torch.nn.MaxPool2d(2))
net.add_module("conv3", torch.nn.Conv2d(32, 64, 3, padding=1))
net.add_module("relu3", torch.nn.ReLU())
net.add_module("pool3", torch.nn.AdaptiveAvgPool2d(4))
net.add_module("flatten", torch.nn.Flatten())
net.add_module("fc", torch.nn.Linear(64 * 16, 128))
layers = ["relu1", "pool1", "relu2", "pool2", "relu3", "pool3", "fc"]
acts = extract_activations(net, images, layers, stimulus_ids=ids)
print(acts)

result = score_layers(acts, hit, "rsa", rdm_method="correlation", compare_method="spearman")
print(result)
columns = ["layer", "train_score", "test_score", "test_sem", "ceiling", "normalized_score", "n_selected"]
print(result.summary()[columns].round(3).to_string(index=False))
chosen = result.selected().iloc[0]
print(
    f"chosen on 3 subjects, scored on the 4th: {chosen['best_layer']}, Spearman {chosen['score']:.3f} "
    f"+/- {chosen['sem']:.3f} ({chosen['normalized_score']:.2f} of the lower noise ceiling)"
)

# HMAX on the same held-out subjects: the mean over subjects of its RDM correlation
hmax_fit = evaluate(hmax, hit, "spearman", bootstrap=None, rdm_descriptor="subject")
lower, upper = hmax_fit.ceiling_estimate
print(f"HMAX: Spearman {hmax_fit.estimate[0]:.3f} ({hmax_fit.estimate[0] / lower:.2f} of the lower noise ceiling)")
print(f"noise ceiling of the 4 subjects: lower {lower:.3f}, upper {upper:.3f}")
if os.environ.get("NEUROENC_SAVE_FIGURES"):
    fig = result.plot()
    fig.axes[0].axhline(hmax_fit.estimate[0], color="k", ls=":", label="HMAX")
    fig.axes[0].legend(frameon=False, fontsize="small")
    fig.savefig("model_brain_rsa92.png", dpi=120)

# held-out images instead of held-out subjects: 5 folds of the 92 images
by_images = score_layers(acts, hit, "rsa", split_by="stimuli", cv=5, random_state=0)
n_selected = by_images.summary().set_index("layer")["n_selected"]
print("\nFolds over images, times each layer was chosen:", ", ".join(f"{k} {v}" for k, v in n_selected.items()))
print(
    by_images.selected()[["best_layer", "score", "sem", "ceiling", "normalized_score"]].round(3).to_string(index=False)
)
