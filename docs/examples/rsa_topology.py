"""Topological RSA on the 92-image human IT RDMs (Kriegeskorte et al. 2008).

The 8 hIT fMRI RDMs (4 subjects x 2 sessions) and the 8 model RDMs are
summarised three ways: the RDM itself, its geo-topological transform (RGTM,
thresholds at the 10% and 90% quantiles of each RDM) and a geodesic
transform (RGDM, of the RGTM with thresholds at the minimum and the 90%
quantile). Each statistic is compared with the models (Pearson correlation,
mean over the 8 hIT RDMs) and across the two sessions of a subject.
"""

import numpy as np
from scipy.io import loadmat

from neuroenc.datapath import data_path
from neuroenc.rsa.comparisons import compare
from neuroenc.rsa.rdms import RDMs
from neuroenc.rsa.topology import geodesic, geotopological

images = [f"img{i:02d}" for i in range(92)]
brain = loadmat(data_path("rsa92", "92_brainRDMs.mat"))["RDMs"]
hit = RDMs(
    np.array([brain[0, s, k]["RDM"] for s in range(4) for k in range(2)], dtype=np.float64),
    conditions=images,
    method="correlation",
    metadata={"subject": np.repeat(["BE", "KO", "SN", "TI"], 2), "session": np.tile([1, 2], 4)},
)
raw = loadmat(data_path("rsa92", "92_modelRDMs.mat"))["Models"][0]
models = RDMs(
    np.array([np.asarray(m["RDM"], dtype=np.float64) for m in raw]),
    conditions=images,
    metadata={"model": [str(m["name"][0]) for m in raw]},
)

statistics = {
    "RDM": lambda r: r,
    "RGTM(0.1, 0.9)": lambda r: geotopological(r, 0.1, 0.9),
    # categorical models (animacy, ...) split into one graph component per
    # category: "beyond" puts those pairs one unit past the farthest connected pair
    "RGDM(0, 0.9)": lambda r: geodesic(geotopological(r, 0.0, 0.9), disconnected="beyond"),
}
transformed = {name: (f(hit), f(models)) for name, f in statistics.items()}

rgdm = transformed["RGDM(0, 0.9)"][0]
print(rgdm)
print("method:", rgdm.method)
print(rgdm.metadata.round(3).to_string())

print("\nPearson correlation with each model (mean over the 8 hIT RDMs)")
print(f"{'model':<22}" + "".join(f"{name:>16}" for name in statistics))
similarity = {name: compare(h, m, "pearson").mean(axis=0) for name, (h, m) in transformed.items()}
for j, model in enumerate(models.metadata["model"]):
    print(f"{model:<22}" + "".join(f"{similarity[name][j]:16.3f}" for name in statistics))

print("\nSession 1 vs session 2 of the same subject (mean Pearson correlation)")
for name, (h, _) in transformed.items():
    r = compare(h.select(session=1), h.select(session=2), "pearson")
    print(f"{name:<16} same subject {np.diag(r).mean():.3f}   other subjects {r[~np.eye(4, dtype=bool)].mean():.3f}")

# A lower threshold makes the pairs below it zero-length edges; in a geodesic
# these chain up, so with noisy data most conditions merge into one "place".
print()
for low in (0.0, 0.02, 0.1):
    zeros = np.mean(geodesic(geotopological(hit, low, 0.9)).vectors == 0)
    print(f"RGDM({low:g}, 0.9) of hIT: {zeros:.0%} of the distances are 0")

# Pooled quantiles (rsatoolbox's convention) tie each RDM's thresholds to the
# batch: the small-scale HMAX model never reaches the upper threshold when
# thresholded together with the hIT RDMs.
both = RDMs.concatenate([hit, models.select(model="HMAX")])
print()
for per_rdm in (True, False):
    hmax = geotopological(both, 0.1, 0.9, per_rdm=per_rdm)[-1]
    print(
        f"HMAX RGTM with per_rdm={per_rdm}: thresholds {hmax.metadata['gt_lower'][0]:.3f} / "
        f"{hmax.metadata['gt_upper'][0]:.3f}, share of 0s {np.mean(hmax.vectors == 0):.2f}, "
        f"of 1s {np.mean(hmax.vectors == 1):.2f}"
    )
