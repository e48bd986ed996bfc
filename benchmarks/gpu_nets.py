"""The network sections of bench_gpu.py: one training epoch, cvtool (xp) vs PyTorch (device).

MLP: sigmoid layers, cross-entropy (sigmoid outputs), SGD eta 0.5 — the
configuration of bench_mlp.py. CNN: the presets at batch 128 with Adam 1e-3 and
log-likelihood (softmax) — the configuration of bench_cnn.py, whose PyTorch
model builder is reused so both sides train the same architecture.
"""

from __future__ import annotations

import statistics
import time

from cvtool import backend


def _epoch_cvtool(model, x, y, batch, optimizer, loss, xp, epochs):
    times = []
    for e in range(epochs):
        t0 = time.perf_counter()
        model.fit(
            x, y, epochs=1, batch_size=batch, optimizer=optimizer, loss=loss, monitor=(), seed=e
        )
        backend.synchronize(xp)
        times.append(time.perf_counter() - t0)
    return times


def _epoch_torch(net, opt, loss_fn, X, Y, batch, sync, epochs):
    import torch

    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(X), device=X.device)
        for i in range(0, len(X), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss_fn(net(X[idx]), Y[idx]).backward()
            opt.step()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def bench_nets(data, xp, torch, device, repeat, rows, sections, quick):
    from cvtool.nn import optim
    from cvtool.nn.model import Sequential
    from cvtool.nn.spec import layers_from_sizes

    sync = (lambda: torch.cuda.synchronize()) if device == "cuda" else (lambda: None)
    epochs = max(2, repeat)  # the first epoch is the warm-up, the median of the rest counts
    x = data.x_train.reshape(len(data.x_train), -1)
    y = data.y_train
    xd = xp.asarray(x)
    X = torch.as_tensor(x, dtype=torch.float32, device=device) / 255
    if "mlp" in sections:
        configs = [("784,100,10", 128)] + ([] if quick else [("784,30,10", 10)])
        for sizes, batch in configs:
            model = Sequential.from_spec(layers_from_sizes(sizes, "sigmoid")).build(
                xp, "float32", 0
            )
            t_c = _epoch_cvtool(model, xd, y, batch, optim.SGD(0.5), "cross-entropy", xp, epochs)
            dims = [int(s) for s in sizes.split(",")]
            mods = []
            for a, b in zip(dims[:-1], dims[1:], strict=True):
                mods += [torch.nn.Linear(a, b), torch.nn.Sigmoid()]
            net = torch.nn.Sequential(*mods).to(device)
            Y = torch.nn.functional.one_hot(torch.as_tensor(y, device=device), 10).float()
            bce = torch.nn.functional.binary_cross_entropy
            t_t = _epoch_torch(
                net, torch.optim.SGD(net.parameters(), lr=0.5), bce, X, Y, batch, sync, epochs
            )
            _row(rows, f"mlp [{sizes}] m={batch}", t_c, t_t)
    if "cnn" in sections:
        from benchmarks.bench_cnn import _torch_model
        from cvtool.nn import cnn
        from cvtool.nn.spec import PRESETS

        Xi = X.reshape(-1, 1, 28, 28)
        Yi = torch.as_tensor(y, device=device)
        xi = xp.asarray(data.x_train)
        for preset in ("nielsen-ch6", "keras-course"):
            model = cnn.cnn_model(PRESETS[preset], (28, 28, 1), init="glorot").build(
                xp, "float32", 0
            )
            t_c = _epoch_cvtool(model, xi, y, 128, optim.Adam(1e-3), "log-likelihood", xp, epochs)
            net = _torch_model(preset).to(device)
            ce = torch.nn.functional.cross_entropy
            t_t = _epoch_torch(
                net, torch.optim.Adam(net.parameters(), 1e-3), ce, Xi, Yi, 128, sync, epochs
            )
            _row(rows, f"cnn {preset} b=128", t_c, t_t)


def _row(rows, name, t_c, t_t):
    c, t = statistics.median(t_c[1:]), statistics.median(t_t[1:])
    rows.append({"bench": name, "cvtool_s": c, "torch_s": t, "ratio": c / t})
