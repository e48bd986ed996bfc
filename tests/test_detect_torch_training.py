"""cvtool's detector training step against PyTorch's (issue 14): same weights, same batches.

In float64, ``train_detector`` (``fit``: Adam, batch-norm forward/backward and
running statistics, YOLO loss, mean over the batch, the last smaller batch) and
the PyTorch rebuild of ``benchmarks/bench_detect.py`` start from the same
weights and see the same mini-batches in the same order; after the steps every
parameter and running statistic must agree. The conv biases just before a
batch norm are left out: their true gradient is 0, so what Adam does with the
rounding noise each library leaves there differs (batch norm cancels them),
and from the second step on the running means, which take those biases in
(by (1 - momentum) = 0.1 of the mean), agree only to 0.1 eta per step.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_detect as bd  # noqa: E402


def _train_both(n_train: int, seed: int = 0):
    from cvtool.data.canvas import TrainingData
    from cvtool.data.core import Dataset
    from cvtool.detect.task import labels_of
    from cvtool.detect.train import train_detector
    from cvtool.detect.yolo import encode_targets
    from cvtool.nn.cnn import cnn_model

    sets, val, test = bd.canvas_epochs(seed, 1, n_train, 4, 4)
    first = sets[0]
    ds = Dataset("canvases", first.images, labels_of(first), test.images, labels_of(test),
                 first.class_names)  # fmt: skip
    data = TrainingData(ds, (val.images, labels_of(val)), None, "test canvases")
    spec, eta = bd._spec(), bd.trainer_eta(train_detector)
    start = cnn_model(spec, (64, 64, 1), init="pytorch").build(np, "float64", seed)
    net = bd.torch_net(spec, (64, 64, 1), "pytorch").double()
    bd.copy_weights(net, start)
    result = train_detector(data, grid=bd.GRID, boxes_per_cell=bd.BOXES, epochs=1,
                            batch_size=bd.BATCH, optimizer="adam", eta=eta, seed=seed,
                            dtype="float64")  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=eta, betas=(0.9, 0.999), eps=1e-8)
    order = torch.from_numpy(bd.shuffles(seed, 1, n_train)[0])
    x = bd.to_nchw(torch, first.images).double()
    y = torch.from_numpy(encode_targets(first.boxes, first.labels, grid=bd.GRID, num_classes=10,
                                        image_size=64, dtype=np.float64))  # fmt: skip
    net.train()
    for s in range(0, n_train, bd.BATCH):
        idx = order[s : s + bd.BATCH]
        opt.zero_grad()
        bd.yolo_loss_torch(torch, net(x[idx]).permute(0, 2, 3, 1), y[idx]).backward()
        opt.step()
    return start, result.model, net


def _pairs(model, net, steps: int, eta: float):
    """(name, cvtool array, PyTorch array, absolute tolerance or None) for every parameter
    and statistic; relative tolerances are 1e-7 of the array's largest value."""
    mods = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.BatchNorm2d)]
    layers = [layer for layer in model.layers if layer.params]
    for i, (mod, layer) in enumerate(zip(mods, layers, strict=True)):
        p = layer.params
        if isinstance(mod, torch.nn.Conv2d):
            before_bn = i + 1 < len(mods) and isinstance(mods[i + 1], torch.nn.BatchNorm2d)
            yield f"conv{i}.W", p["W"].transpose(3, 2, 0, 1), mod.weight, 0.0
            yield f"conv{i}.b", p["b"], mod.bias, None if before_bn else 0.0
        else:
            drift = 0.1 * eta * (steps - 1)  # the conv bias before it, seen by steps 2..
            yield f"bn{i}.gamma", p["gamma"], mod.weight, 0.0
            yield f"bn{i}.beta", p["beta"], mod.bias, 0.0
            yield f"bn{i}.running_mean", layer.state["running_mean"], mod.running_mean, drift
            yield f"bn{i}.running_var", layer.state["running_var"], mod.running_var, 0.0


def test_detector_training_steps_match_pytorch():
    n_train = 48  # two steps: a full batch, then the smaller last one
    from cvtool.detect.train import train_detector

    start, model, net = _train_both(n_train)
    steps, eta = -(-n_train // bd.BATCH), bd.trainer_eta(train_detector)
    moved = max(float(np.abs(a.params[k] - b.params[k]).max())
                for a, b in zip(model.layers, start.layers, strict=True) for k in a.params)  # fmt: skip
    assert moved > 1e-4  # the steps did change the weights (Adam moves each by about eta)
    for name, ours, ref, extra in _pairs(model, net, steps, eta):
        ref = ref.detach().numpy()
        assert ours.shape == ref.shape, name
        if extra is not None:
            tol = 1e-7 * max(float(np.abs(ref).max()), 1e-12) + extra
            assert float(np.abs(ours - ref).max()) < tol, name
