"""Tests of extract_activations and list_layers with small torch models defined here."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from neuroenc.activationdata import Activations  # noqa: E402
from neuroenc.activations.extract import extract_activations, first_tensor, list_layers  # noqa: E402
from neuroenc.activations.reduce import PCA, SparseRandomProjection  # noqa: E402
from neuroenc.errors import (  # noqa: E402
    DataError,
    LabelError,
    MissingFileError,
    NonFiniteError,
    ShapeError,
    StoreError,
    UnknownNameError,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


class ConvNet(nn.Module):
    """Conv net with an in-place ReLU, batch norm and dropout (all of which eval mode must tame)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(inplace=True),  # would overwrite the hooked conv output without a copy
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        h = self.pool(self.features(x)).flatten(1)
        return self.fc(self.dropout(h))


class TinyTransformer(nn.Module):
    """Token embedding, a 2-layer batch-first TransformerEncoder, mean pooling and a head."""

    def __init__(self, vocab: int = 50, d: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        layer = nn.TransformerEncoderLayer(d, nhead=2, dim_feedforward=32, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(d, 3)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(dim=1))


class Recurrent(nn.Module):
    def __init__(self, batch_first: bool = True) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 6, num_layers=2, batch_first=batch_first)
        self.out = nn.Linear(6, 2)

    def forward(self, x):  # x is batch-first either way
        if self.lstm.batch_first:
            return self.out(self.lstm(x)[0][:, -1])
        return self.out(self.lstm(x.transpose(0, 1))[0][-1])


def make_conv(seed: int = 0) -> ConvNet:
    torch.manual_seed(seed)
    net = ConvNet()
    with torch.no_grad():  # non-trivial running statistics so that eval mode matters
        net.features[4].running_mean.uniform_(-0.5, 0.5)
        net.features[4].running_var.uniform_(0.5, 2.0)
    return net


def images(n: int = 23, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def manual_conv(net: ConvNet, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Every intermediate output by calling the submodules by hand, in eval mode."""
    net.eval()
    out = {}
    with torch.no_grad():
        h = x
        for i, module in enumerate(net.features):
            h = module(h.clone())
            out[f"features.{i}"] = h.numpy().copy()
        h = net.pool(h)
        out["pool"] = h.numpy().copy()
        h = net.dropout(h.flatten(1))
        out["dropout"] = h.numpy().copy()
        out["fc"] = net.fc(h).numpy().copy()
    return out


# ----------------------------------------------------------------------
# correctness against manual forward passes


def test_conv_hooks_equal_manual_forward_and_restore_modes():
    net = make_conv()
    net.train()
    net.features[4].eval()  # a mixed state must come back exactly
    modes = [m.training for m in net.modules()]
    params = {k: v.clone() for k, v in net.state_dict().items()}
    x = images()
    act = extract_activations(net, x, "**", batch_size=5)
    assert [m.training for m in net.modules()] == modes
    assert all(torch.equal(params[k], v) for k, v in net.state_dict().items())
    ref = manual_conv(make_conv(), x)
    # Layers in the order they ran (the container is registered before pool/dropout/fc, in order here).
    assert act.layer_names == [*(f"features.{i}" for i in range(6)), "features", "pool", "dropout", "fc"]
    for name, expected in ref.items():
        np.testing.assert_allclose(act[name], expected, rtol=1e-5, atol=1e-6, err_msg=name)
    assert (act["features.0"] < 0).any()  # pre-ReLU values: the in-place ReLU did not reach the copy
    assert act.stimulus_ids.tolist() == list(range(23)) and act.model.endswith("ConvNet")


def test_deterministic_and_batch_size_invariant():
    net, x = make_conv(), images()
    a = extract_activations(net, x, ["features.3", "fc"], batch_size=4)
    b = extract_activations(net, x, ["features.3", "fc"], batch_size=4)
    c = extract_activations(net, x, ["features.3", "fc"], batch_size=23)
    for name in a:
        assert a[name].tobytes() == b[name].tobytes()
        np.testing.assert_allclose(a[name], c[name], rtol=1e-5, atol=1e-6)


def test_tiny_transformer_layers_equal_manual_forward():
    torch.manual_seed(0)
    net = TinyTransformer()
    tokens = torch.randint(0, 50, (9, 7), generator=torch.Generator().manual_seed(2))
    act = extract_activations(net, tokens, ["embed", "encoder.layers.*", "head"], batch_size=4)
    assert act.layer_names == ["embed", "encoder.layers.0", "encoder.layers.1", "head"]
    net.eval()
    with torch.no_grad():
        e = net.embed(tokens)
        h0 = net.encoder.layers[0](e)
        h1 = net.encoder.layers[1](h0)
        head = net.head(h1.mean(dim=1))
    for name, expected in {"embed": e, "encoder.layers.0": h0, "encoder.layers.1": h1, "head": head}.items():
        np.testing.assert_allclose(act[name], expected.numpy(), rtol=1e-5, atol=1e-5, err_msg=name)
    assert net.training is False  # it was in eval mode before
    tokens_mean = extract_activations(net, tokens, "encoder.layers.1", reduce="mean")
    np.testing.assert_allclose(tokens_mean["encoder.layers.1"], h1.mean(dim=1).numpy(), rtol=1e-5, atol=1e-6)


def test_tuple_outputs_first_tensor_rule_and_selector():
    torch.manual_seed(0)
    net = Recurrent()
    x = torch.randn(5, 7, 4)
    act = extract_activations(net, x, "lstm")
    net.eval()
    with torch.no_grad():
        seq, (h, _) = net.lstm(x)
    np.testing.assert_allclose(act["lstm"], seq.numpy(), rtol=1e-6, atol=1e-6)  # (output, (h, c)) -> output
    hidden = extract_activations(net, x, "lstm", output=lambda out: out[1][0].transpose(0, 1))
    np.testing.assert_allclose(hidden["lstm"], h.transpose(0, 1).numpy(), rtol=1e-6, atol=1e-6)
    assert hidden.metadata["output"]["lstm"].endswith("<lambda>")
    assert first_tensor({"a": None, "b": [3, (torch.ones(1),)]}).shape == (1,)
    assert first_tensor((None, "x")) is None


def test_sequence_first_output_needs_a_selector():
    torch.manual_seed(0)
    net = Recurrent(batch_first=False)
    x = torch.randn(5, 7, 4)
    with pytest.raises(ShapeError, match="first axis is not the batch axis.*output="):
        extract_activations(net, x, "lstm")  # its output is (time, batch, features)
    act = extract_activations(net, x, "lstm", output=lambda out: out[0].transpose(0, 1))
    assert act["lstm"].shape == (5, 7, 6)


# ----------------------------------------------------------------------
# stimulus kinds


class PairDataset(torch.utils.data.Dataset):
    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], i % 3  # (image, label)


def test_every_stimulus_kind_gives_the_same_activations(tmp_path):
    net, x = make_conv(), images(17)
    layers = ["features.3", "fc"]
    ref = extract_activations(net, x, layers, batch_size=5)
    h5 = tmp_path / "stimuli.h5"
    with h5py.File(h5, "w") as f:
        f["images"] = x.numpy()
    with h5py.File(h5, "r") as f:
        from_h5 = extract_activations(net, f["images"], layers, batch_size=5)
    kinds = {
        "numpy float64": extract_activations(net, x.numpy().astype(np.float64), layers, batch_size=5),
        "dataset": extract_activations(net, PairDataset(x), layers, batch_size=5),
        "loader": extract_activations(net, torch.utils.data.DataLoader(PairDataset(x), batch_size=5), layers),
        "generator": extract_activations(net, (x[i : i + 5] for i in range(0, 17, 5)), layers),
        "list of (x, y)": extract_activations(net, [(x[i : i + 5], None) for i in range(0, 17, 5)], layers),
        "preprocess": extract_activations(
            net, (x[i : i + 5] * 2 for i in range(0, 17, 5)), layers, preprocess=lambda b: b / 2
        ),
        "h5py dataset": from_h5,
    }
    for kind, act in kinds.items():
        assert act.n_stimuli == 17, kind
        for name in layers:
            np.testing.assert_allclose(act[name], ref[name], rtol=1e-6, atol=1e-6, err_msg=kind)


def test_dict_batches_are_keyword_arguments():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 4)
            self.b = nn.Linear(2, 4)

        def forward(self, image, extra, scale=1.0):
            return self.a(image) * scale + self.b(extra)

    torch.manual_seed(0)
    net = TwoInputs()
    img, extra = torch.randn(6, 3), torch.randn(6, 2)
    batches = [{"image": img[i : i + 4], "extra": extra[i : i + 4].numpy(), "scale": 2.0} for i in (0, 4)]
    act = extract_activations(net, batches, ["a", "b"], stimulus_ids=list("uvwxyz"))
    np.testing.assert_allclose(act["a"], net.a(img).detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(act["b"], net.b(extra).detach().numpy(), rtol=1e-6)
    assert act.stimulus_ids.tolist() == list("uvwxyz")


def test_real_92_images_through_a_conv_net(rsa92_dir):
    from scipy.io import loadmat

    mat = loadmat(rsa92_dir / "Kriegeskorte_Neuron2008_supplementalData.mat")
    imgs = np.stack([s["image"] for s in mat["stimuli_92objs"][0]])[:, ::5, ::5]  # 92 x 35 x 35 x 3 uint8
    names = [f"img{i:02d}" for i in range(92)]
    net = make_conv()

    def to_tensor(batch):  # uint8 HWC numpy -> float CHW tensor in [0, 1]
        return torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float() / 255

    act = extract_activations(
        net,
        imgs,
        ["features.0", "fc"],
        batch_size=16,
        preprocess=to_tensor,
        stimulus_ids=names,
        reduce={"features.0": "mean"},
    )
    ref = manual_conv(make_conv(), to_tensor(imgs))
    np.testing.assert_allclose(act["features.0"], ref["features.0"].mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(act["fc"], ref["fc"], rtol=1e-5, atol=1e-6)
    assert act.select(["img91", "img00"])["fc"].shape == (2, 10)


# ----------------------------------------------------------------------
# reductions during extraction


def test_reductions_equal_reducing_the_full_activations():
    net, x = make_conv(), images(40)
    full = extract_activations(net, x, ["features.0", "features.3", "fc"], batch_size=6)
    act = extract_activations(
        net,
        x,
        ["features.0", "features.3", "fc"],
        batch_size=6,
        reduce={"features.0": SparseRandomProjection(32, random_state=5), "features.3": PCA(7, n_fit=15), "fc": "mean"},
    )
    srp = SparseRandomProjection(32, random_state=5).fit(full["features.0"])
    np.testing.assert_allclose(act["features.0"], srp.transform(full["features.0"]), rtol=1e-5, atol=1e-5)
    # PCA fitted on the first 15 stimuli only (a batch straddles n_fit), then applied to all 40.
    pca = PCA(7, n_fit=15).fit(full["features.3"][:15])
    np.testing.assert_allclose(act["features.3"], pca.transform(full["features.3"]), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(act["fc"], full["fc"])  # 2-D outputs have no axis to average
    assert act.metadata["reduce"]["features.3"] == {"name": "pca", "n_components": 7, "n_fit": 15}


def test_pca_with_fewer_stimuli_than_n_fit_and_callable_reduce():
    net, x = make_conv(), images(12)
    full = extract_activations(net, x, "features.5", batch_size=5)
    act = extract_activations(net, (x[i : i + 5] for i in range(0, 12, 5)), "features.5", reduce=PCA(4, n_fit=100))
    pca = PCA(4, n_fit=100).fit(full["features.5"])
    np.testing.assert_allclose(act["features.5"], pca.transform(full["features.5"]), rtol=1e-4, atol=1e-4)
    top = extract_activations(net, x, "features.5", reduce=lambda b: b.max(axis=(2, 3)))
    np.testing.assert_array_equal(top["features.5"], full["features.5"].max(axis=(2, 3)))


# ----------------------------------------------------------------------
# layers


def test_list_layers_table():
    torch.manual_seed(0)
    table = list_layers(ConvNet(), images(3))
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["name", "type", "output_type", "output_shape", "n_units", "n_calls", "n_params"]
    row = table.set_index("name").loc["features.3"]
    assert row["type"] == "Conv2d" and row["output_shape"] == (1, 16, 4, 4) and row["n_units"] == 256
    assert row["n_params"] == 8 * 16 * 9 + 16
    assert table.set_index("name").loc["features", "n_params"] == sum(
        p.numel() for p in ConvNet().features.parameters()
    )
    lstm = list_layers(Recurrent(), torch.randn(2, 5, 4)).set_index("name").loc["lstm"]
    assert lstm["output_type"] == "tuple" and lstm["output_shape"] == (1, 5, 6)


def test_reused_and_unused_modules():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin1 = nn.Linear(3, 3)
            self.lin2 = nn.Linear(3, 3)
            self.act = nn.Tanh()
            self.unused = nn.Linear(3, 3)

        def forward(self, x):
            return self.act(self.lin2(self.act(self.lin1(x))))

    torch.manual_seed(0)
    net, x = Odd(), torch.randn(4, 3)
    table = list_layers(net, x).set_index("name")
    assert table.loc["act", "n_calls"] == 2 and table.loc["unused", "n_calls"] == 0
    assert table.loc["unused", "output_shape"] is None
    with pytest.warns(UserWarning, match="'act' ran 2 times.*last output is kept"):
        act = extract_activations(net, x, "act")
    np.testing.assert_allclose(act["act"], net(x).detach().numpy(), rtol=1e-6)
    with pytest.raises(ShapeError, match="'unused'.* did not run"):
        extract_activations(net, x, ["lin1", "unused"])


def test_unknown_layers_list_close_matches():
    with pytest.raises(UnknownNameError, match=r"'features.30' \(closest: 'features.3'.*list_layers"):
        extract_activations(make_conv(), images(3), ["features.30"])
    with pytest.raises(UnknownNameError, match="'decoder.*'"):
        extract_activations(make_conv(), images(3), "decoder.*")


class CountingNet(ConvNet):
    calls = 0

    def forward(self, x):
        CountingNet.calls += 1
        return super().forward(x)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"stimuli": "images"}, ShapeError, "not supported"),
        ({"stimuli": np.full((3, 3, 8, 8), np.nan)}, NonFiniteError, "NaN"),
        ({"stimuli": torch.zeros(0, 3, 8, 8)}, Exception, "empty"),
        ({"batch_size": 0}, ShapeError, "batch_size"),
        ({"layers": "nope"}, UnknownNameError, "nope"),
        ({"reduce": "tsne"}, UnknownNameError, "tsne"),
        ({"reduce": {"fc": "mean", "conv9": "mean"}}, UnknownNameError, "conv9"),
        ({"reduce": PCA(10, n_fit=20)}, ShapeError, "at least 10 stimuli"),
        ({"output": {"fc": 3}}, ShapeError, "callable"),
        ({"stimulus_ids": [1, 2]}, LabelError, "2 entries but there are 4"),
        ({"stimulus_ids": [1, 2, 2, 3]}, LabelError, "repeated"),
        ({"stimuli": torch.utils.data.DataLoader(torch.zeros(4, 3, 8, 8), shuffle=True)}, DataError, "shuffle"),
        ({"out": "/nonexistent/dir/x.h5"}, MissingFileError, "Folder"),
    ],
)
def test_bad_arguments_fail_before_any_forward_pass(kwargs, error, match):
    net = CountingNet()
    CountingNet.calls = 0
    args = {"stimuli": torch.zeros(4, 3, 8, 8), "layers": "fc"} | kwargs
    with pytest.raises(error, match=match):
        extract_activations(net, args.pop("stimuli"), args.pop("layers"), **args)
    assert CountingNet.calls == 0


def test_errors_found_during_the_run():
    net = make_conv()
    batches = [images(4), images(4).masked_fill(torch.arange(4).view(4, 1, 1, 1) == 2, float("nan"))]
    with pytest.raises(NonFiniteError, match="Stimulus 6 contains NaN"):
        extract_activations(net, batches, "fc")
    overflow = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
    with torch.no_grad():
        overflow[0].weight.fill_(3e38)
    with pytest.raises(NonFiniteError, match="Layer '0' produced NaN or Inf for stimulus 1"):
        extract_activations(overflow, torch.tensor([[0.0, 0.0], [10.0, 10.0]]), ["0", "1"])
    with pytest.raises(LabelError, match="held 8 stimuli but 9 were expected"):
        extract_activations(net, [images(4), images(4)], "fc", stimulus_ids=range(9))
    with pytest.raises(LabelError, match="more than the 5 stimuli"):
        extract_activations(net, [images(4), images(4)], "fc", stimulus_ids=range(5))
    with pytest.raises(DataError, match="torch.nn.Module"):
        extract_activations(lambda x: x, images(2), "fc")


# ----------------------------------------------------------------------
# HDF5 streaming and resuming


def test_streamed_file_equals_memory_result(tmp_path):
    net, x = make_conv(), images(21)
    layers = ["features.0", "features.3", "fc"]
    reduce = {"features.3": PCA(5, n_fit=9)}
    mem = extract_activations(net, x, layers, batch_size=4, reduce=reduce, stimulus_ids=[f"s{i}" for i in range(21)])
    out = tmp_path / "acts.h5"
    disk = extract_activations(
        net, x, layers, batch_size=4, reduce=reduce, out=out, stimulus_ids=[f"s{i}" for i in range(21)]
    )
    assert disk.is_lazy and disk.layer_names == mem.layer_names
    assert disk.stimulus_ids.tolist() == mem.stimulus_ids.tolist() and disk.metadata == mem.metadata
    for name in layers:
        assert disk[name].tobytes() == mem[name].tobytes()
    with h5py.File(out, "r") as f:
        assert sorted(f["activations/layers"]) == sorted(layers)  # one dataset per layer
        assert f["activations/n_done"][0] == 21
    again = Activations.from_hdf5(out, layers="features.*")
    assert again.layer_names == ["features.0", "features.3"]


def run_interrupted(net, x, out, stop_after, batch_size=4, **kwargs):
    """Run an extraction whose stimulus iterable raises after ``stop_after`` batches."""

    def batches():
        for k, i in enumerate(range(0, len(x), batch_size)):
            if k == stop_after:
                raise RuntimeError("interrupted")
            yield x[i : i + batch_size]

    with pytest.raises(RuntimeError, match="interrupted"):
        extract_activations(net, batches(), kwargs.pop("layers"), out=out, stimulus_ids=range(len(x)), **kwargs)


@pytest.mark.parametrize("n_fit, n_done_after_stop", [(6, 12), (20, 0)])
def test_interrupted_run_resumes_to_the_same_file(tmp_path, n_fit, n_done_after_stop):
    net, x = make_conv(), images(26)
    kwargs = {"layers": ["features.0", "features.3", "fc"], "reduce": {"features.3": PCA(4, n_fit=n_fit)}}
    ref = extract_activations(net, x, batch_size=4, **kwargs)
    out = tmp_path / "acts.h5"
    run_interrupted(net, x, out, stop_after=3, **dict(kwargs))
    with h5py.File(out, "r") as f:
        # Three batches done; with n_fit=20 the PCA layer has not been fitted yet, so nothing counts.
        assert f["activations/n_done"][0] == n_done_after_stop
    with pytest.raises(StoreError, match="incomplete"):
        Activations.from_hdf5(out)
    resumed = extract_activations(net, x, batch_size=4, out=out, stimulus_ids=range(26), **kwargs)
    assert resumed.n_stimuli == 26 and resumed.shapes["fc"] == (26, 10)  # no duplicated rows
    for name in ref:
        assert resumed[name].tobytes() == ref[name].tobytes(), name
    # A finished file is returned without running the model again.
    calls = []
    net.register_forward_pre_hook(lambda module, args: calls.append(1))
    done = extract_activations(net, x, batch_size=4, out=out, stimulus_ids=range(26), **kwargs)
    assert not calls and done["fc"].tobytes() == ref["fc"].tobytes()


def test_resume_refuses_other_arguments(tmp_path):
    net, x = make_conv(), images(12)
    out = tmp_path / "acts.h5"
    run_interrupted(net, x, out, stop_after=1, layers=["fc"])
    cases = {
        "model weights": dict(model=make_conv(seed=1)),
        "layers": dict(layers=["fc", "pool"]),
        "reductions": dict(reduce="srp"),
        "stimuli": dict(stimuli=images(12, seed=9)),
        "stimulus ids": dict(stimulus_ids=[f"s{i}" for i in range(12)]),
        "number of stimuli": dict(stimuli=images(13), stimulus_ids=range(13)),
    }
    for what, change in cases.items():
        args = {"model": net, "stimuli": x, "layers": ["fc"], "stimulus_ids": range(12)} | change
        with pytest.raises(StoreError, match=f"differs in: .*{what}.*overwrite=True"):
            extract_activations(args.pop("model"), args.pop("stimuli"), args.pop("layers"), out=out, **args)
    fresh = extract_activations(make_conv(seed=1), x, "fc", out=out, overwrite=True)
    ref = extract_activations(make_conv(seed=1), x, "fc")
    assert fresh["fc"].tobytes() == ref["fc"].tobytes()


def test_out_file_that_is_not_a_stream(tmp_path):
    net, x = make_conv(), images(6)
    out = tmp_path / "other.h5"
    Activations({"a": np.ones((2, 2))}).to_hdf5(out)
    with pytest.raises(StoreError, match="not a resumable extraction"):
        extract_activations(net, x, "fc", out=out)
    out.write_bytes(b"not hdf5 at all")
    with pytest.raises(StoreError, match="overwrite=True"):
        extract_activations(net, x, "fc", out=out)
    act = extract_activations(net, x, "fc", out=out, overwrite=True)
    assert act.n_stimuli == 6
    with pytest.raises(LabelError, match="pass stimulus_ids"):
        extract_activations(net, iter([x]), "fc", out=tmp_path / "new.h5")


CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[2])
    from test_activations_extract import images, make_conv
    from neuroenc.activations.extract import extract_activations

    def slow(batch):
        print("batch", flush=True)
        time.sleep(0.01)
        return batch

    extract_activations(make_conv(), images(160), ["features.0", "features.3", "fc"], batch_size=4,
                        out=sys.argv[1], preprocess=slow, reduce={"features.3": "mean"})
    print("finished", flush=True)
    """
)


def test_sigkill_at_random_moments_then_resume(tmp_path):
    """Kill the writer three times at random moments; the file stays readable and the rerun completes."""
    out = tmp_path / "acts.h5"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    rng = random.Random(0)
    done_before = 0
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(out), str(REPO_ROOT / "tests")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            seen = 0
            for line in proc.stdout:
                seen += line.startswith("batch")
                if seen == 6:
                    break
            time.sleep(rng.uniform(0.0, 0.05))  # anywhere in a forward pass, a write or a flush
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL, err
        with h5py.File(out, "r") as f:  # the killed writer left a readable file
            n_done = int(f["activations/n_done"][0])
        assert done_before <= n_done < 160
        done_before = n_done
    assert done_before > 0
    layers = ["features.0", "features.3", "fc"]
    resumed = extract_activations(
        make_conv(), images(160), layers, batch_size=4, out=out, reduce={"features.3": "mean"}
    )
    ref = extract_activations(make_conv(), images(160), layers, batch_size=4, reduce={"features.3": "mean"})
    for name in layers:
        assert resumed[name].shape == ref[name].shape and resumed[name].tobytes() == ref[name].tobytes(), name
    assert not list(tmp_path.glob(".*.tmp"))


def test_loaders_samplers_and_leaf_layers():
    net, x = make_conv(), images(10)
    data = torch.utils.data
    ds = data.TensorDataset(x)
    for sampler in (data.SubsetRandomSampler(range(10)), data.WeightedRandomSampler([1.0] * 10, 10)):
        with pytest.raises(DataError, match="random order"):
            extract_activations(net, data.DataLoader(ds, sampler=sampler), "fc")
    dropped = extract_activations(net, data.DataLoader(ds, batch_size=4, drop_last=True), "fc")
    full = extract_activations(net, x, None, device="cpu")  # every leaf module
    assert dropped.n_stimuli == 8
    np.testing.assert_allclose(dropped["fc"], full["fc"][:8], rtol=1e-6, atol=1e-6)
    assert "features" not in full.layer_names and "features.0" in full.layer_names and "fc" in full.layer_names
    assert extract_activations(net, x, "features.*").layer_names == [f"features.{i}" for i in range(6)]

    class NoLen(data.Dataset):
        def __getitem__(self, i):
            return x[i]

    with pytest.raises(ShapeError, match="__len__"):
        extract_activations(net, NoLen(), "fc")
    table = list_layers(net, PairDataset(x), preprocess=lambda b: b[0] * 0)
    assert table.set_index("name").loc["fc", "output_shape"] == (1, 10)
