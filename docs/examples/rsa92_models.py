"""Which model RDM explains human inferior temporal cortex? (92 images, Kriegeskorte et al. 2008)

The data are the hIT fMRI RDMs of 4 subjects, 2 sessions each, for 92 object
images; the 8 model RDMs range from category structure (animacy, faces /
bodies / natural / man-made objects) through the monkey IT RDM to
computational models of vision (EVA, HMAX, V1, silhouette, Radon). Models are
compared with the data by Spearman correlation; a bootstrap over the images
(1000 samples, each with its own noise ceiling) gives standard errors and
tests, and the two sessions of a subject are kept together as one unit.
"""

import numpy as np
import pandas as pd
from scipy.io import loadmat

from neuroenc.datapath import data_path
from neuroenc.rsa.inference import evaluate, permutation_test
from neuroenc.rsa.models import WeightedModel, crossvalidate
from neuroenc.rsa.rdms import RDMs

folder = data_path("rsa92")
brain = loadmat(folder / "92_brainRDMs.mat")["RDMs"]  # (1, 4, 2): subjects x sessions
mats = np.stack([brain[0, s, k]["RDM"] for s in range(4) for k in range(2)]).astype(float)
subjects = [str(brain[0, s, 0]["name"][0]).split("|")[1].strip() for s in range(4) for _ in range(2)]
data = RDMs(mats, metadata={"subject": subjects, "session": [1, 2] * 4}, method="hIT fMRI")
found = loadmat(folder / "92_modelRDMs.mat")["Models"][0]
models = RDMs(np.stack([m["RDM"] for m in found]).astype(float), metadata={"model": [str(m["name"][0]) for m in found]})
print(data)
print(models)

result = evaluate(
    models, data, "spearman", bootstrap="pattern", n_bootstrap=1000, rdm_descriptor="subject", random_state=0
)
pd.set_option("display.width", 120)
table = result.to_frame()
print()
print(table.drop(columns=["method", "kind"]).round(3).to_string(index=False))

pairs = result.to_frame("pairwise", correction="fdr")
best = table.loc[table["mean"].idxmax(), "model"]
print(f"\nPairwise differences involving the best model ({best}), FDR-corrected over all 28 pairs:")
involving = pairs[(pairs["model_a"] == best) | (pairs["model_b"] == best)]
print(involving.round(4).to_string(index=False))

null = permutation_test(models, data, "spearman", n_permutations=1000, random_state=0)
print("\nCondition-label permutation test (1000 permutations):")
print(null.to_frame().round(4).to_string(index=False))

# a weighted combination of the six continuous models, fitted on 4/5 of the images
# and evaluated on the held-out fifth, against the fixed models on the same folds
computational = models[[2, 3, 4, 5, 6, 7]]
cv = crossvalidate(
    [models, WeightedModel(computational, "weighted monkeyIT..RADON")],
    data,
    "spearman",
    n_folds=5,
    rdm_descriptor="subject",
    random_state=0,
)
print("\nCross-validated over images (5 folds):")
print(
    cv.to_frame()[["model", "mean", "sem", "p_zero", "ceiling_lower", "ceiling_upper"]].round(3).to_string(index=False)
)
weights = cv.weights["weighted monkeyIT..RADON"].mean(axis=0)
print("mean weights over folds:", ", ".join(f"{n} {w:.3f}" for n, w in zip(computational.metadata["model"], weights)))
