"""Training the grid detector end to end: cvtool (NumPy) against the same network in PyTorch.

Issue 14's benchmark. Both sides train ``cvtool.detect.train.DETECTOR`` (8 x 8
grid, B = 2, 10 classes on 64 x 64 canvases) with YOLO's loss as
``cvtool.detect.yolo.YoloLoss`` defines it (variant 'bce', confidence target
the IoU, lambda_coord 5, lambda_noobj 0.5) and then are scored by the same
code: cvtool's decoding, per-class NMS and COCO evaluation
(``cvtool.detect.task.Detection.scores``), PyTorch's head output being fed
through it. What is the same on both sides:

- data: ``canvas_streams(seed=SEED)``'s canvases, drawn once in the parent
  before any training: the first training set, then ``generator.sample(n)``
  for every later epoch (what ``train_detector`` does by default), the
  validation set and the test set; both sides get these very arrays;
- network: the spec is parsed by ``cvtool.nn.spec.parse_spec`` and rebuilt
  in PyTorch layer by layer (NCHW; conv 3x3 padding 1, ``BatchNorm2d``
  momentum 0.1 = cvtool's 0.9, eps 1e-5, max-pool 2, 1x1 head); weights from
  the same family (cvtool's init 'pytorch' is PyTorch's default
  ``Conv2d`` initialisation), seeded differently (each library's own RNG);
- loss: the PyTorch loss is the one of ``tests/test_detect_yolo.py``
  (``_torch_loss``), targets encoded by ``cvtool.detect.yolo.encode_targets``
  on both sides, batch mean;
- training: Adam (betas 0.9/0.999, eps 1e-8; eta ``--eta``, default the trainer's
  default, read from its signature), batch 32, the same
  epochs, the same mini-batches in the same order (cvtool's shuffle, a NumPy
  ``default_rng([seed, 1])`` permutation per epoch, is replayed), the last
  smaller batch included; ``--threads`` (default 2) for both (cvtool's
  ``CVTOOL_THREADS`` and BLAS, ``torch.set_num_threads``);
- epoch time: cvtool's ``train_seconds`` record (the epoch's data
  preparation and training steps, no validation); PyTorch's the same span
  (uint8 -> float, target encoding, the steps). Both sides score the
  validation set after each epoch (not timed), so the learning curves can be
  compared (``--json``).

Each side of each seed runs in its own forked child (``_common.run_isolated``):
``peak_mb`` is that child's high-water resident set above what it inherited
(the canvases). Reported per side: test mAP@0.5 and COCO mAP@[.5:.95],
median epoch seconds, peak MiB, and cvtool/PyTorch epoch-time ratio and
mAP differences; medians over ``--seeds`` seeds. Issue 14's targets: mAP@0.5
within 0.03 of PyTorch's (median of 3 seeds), epoch time at most 1.2x.

    python benchmarks/bench_detect.py                                  # 3 seeds, 20 epochs, 2,000
    python benchmarks/bench_detect.py --seeds 1 --epochs 3 --train-size 500 --json out.json

Not a test: nothing here asserts a speed or a score.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import report, run_isolated  # noqa: E402

BATCH = 32
GRID, BOXES = 8, 2


# ---------------------------------------------------------------- shared with bench_segment


def limit_threads(threads: int | None, torch=None) -> None:
    """Hold BLAS, cvtool's conv workers and (given) PyTorch to `threads`; None: their defaults."""
    if threads is None:
        return
    from threadpoolctl import threadpool_limits

    os.environ["CVTOOL_THREADS"] = str(threads)
    threadpool_limits(threads)
    if torch is not None:
        torch.set_num_threads(threads)


def trainer_eta(trainer) -> float:
    """The learning rate `trainer` uses when none is given (its ``eta`` default; None: Adam's)."""
    import inspect

    from cvtool.nn.cnn import default_eta

    value = inspect.signature(trainer).parameters["eta"].default
    return default_eta("adam") if value is None else float(value)


def canvas_epochs(seed: int, epochs: int, n_train: int, n_val: int, n_test: int, **options):
    """(training CanvasSets, one per epoch; validation set; test set) as a trainer sees them.

    Epoch 1 trains on ``canvas_streams``' first set, epoch e > 1 on the
    generator's next ``sample(n_train)``: the stream ``train_detector`` and
    ``train_segmenter`` draw with ``fresh=True``.
    """
    from cvtool.data.canvas import canvas_streams

    gen, first, val, test = canvas_streams(n_train, n_val, n_test, seed=seed, **options)
    return [first] + [gen.sample(n_train) for _ in range(epochs - 1)], val, test


def shuffles(seed: int, epochs: int, n: int) -> list[np.ndarray]:
    """The mini-batch orders of cvtool's ``fit`` (one permutation per epoch, seeded [seed, 1])."""
    from cvtool import backend

    rng = backend.host_rng([seed, 1])
    return [rng.permutation(n) for _ in range(epochs)]


def to_nchw(torch, images: np.ndarray):
    """uint8 (N, H, W, C) -> float32 (N, C, H, W) in [0, 1], as cvtool's ``prepare`` scales."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)


def torch_net(text: str, input_shape: tuple[int, int, int], init: str):
    """A PyTorch module computing the cvtool spec `text` (NCHW in, NCHW out).

    Supports what the detector and the segmenter use: conv (with its
    activation), batchnorm, activation, max/avg pool, upsample
    (nearest/bilinear), tap, concat, add. ``init``: 'pytorch' keeps PyTorch's
    default Conv2d initialisation (cvtool's 'pytorch' is the same
    distribution); 'he' draws N(0, 2/fan_in) weights and zero biases
    (``kaiming_normal_``), as cvtool's 'he'.
    """
    import torch.nn as nn

    from cvtool import shapes
    from cvtool.nn.spec import parse_spec

    specs = parse_spec(f"input:{'x'.join(map(str, input_shape))}, {text}")
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    channels, taps, plan, mods = input_shape[2], {}, [], nn.ModuleList()

    def add(mod):
        mods.append(mod)
        plan.append(("mod", len(mods) - 1))

    for s in specs[1:]:
        a = s.args
        if s.kind == "conv":
            pad = shapes.resolve_padding(a["padding"], a["kernel"][0], a["dilation"])
            conv = nn.Conv2d(channels, a["filters"], a["kernel"], a["stride"], pad,
                             a["dilation"], bias=a["bias"])  # fmt: skip
            if init == "he":
                nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)
            elif init != "pytorch":
                raise ValueError(f"init {init!r} is not mirrored here")
            add(conv)
            channels = a["filters"]
            if a.get("activation") in acts:
                add(acts[a["activation"]]())
        elif s.kind == "batchnorm":
            mom = 1.0 - a.get("momentum", 0.9)  # Keras' momentum -> PyTorch's
            add(nn.BatchNorm2d(channels, eps=a.get("epsilon", 1e-5), momentum=mom))
        elif s.kind == "activation":
            if a["activation"] in acts:
                add(acts[a["activation"]]())
        elif s.kind == "pool":
            cls = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}[a["mode"]]
            add(cls(a["pool"], a["stride"], a["padding"]))
        elif s.kind == "upsample":
            mode = a["mode"]
            extra = {"align_corners": False} if mode == "bilinear" else {}
            add(nn.Upsample(scale_factor=tuple(a["factor"]), mode=mode, **extra))
        elif s.kind == "tap":
            taps[a["name"]] = channels
            plan.append(("tap", a["name"]))
        elif s.kind == "concat":
            channels += taps[a["name"]]
            plan.append(("concat", a["name"]))  # [main, tapped], as cvtool's Concat
        elif s.kind == "add":
            plan.append(("add", a["name"]))
        else:
            raise ValueError(f"layer kind {s.kind!r} is not mirrored here")

    class SpecNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = mods

        def forward(self, x):
            import torch

            kept = {}
            for kind, arg in plan:
                if kind == "mod":
                    x = self.mods[arg](x)
                elif kind == "tap":
                    kept[arg] = x
                elif kind == "concat":
                    x = torch.cat([x, kept[arg]], dim=1)
                else:
                    x = x + kept[arg]
            return x

    return SpecNet()


def copy_weights(net, model) -> None:
    """Put the cvtool model's parameters into the PyTorch net built from the same spec
    (conv W (kh, kw, cin, cout) -> (cout, cin, kh, kw); batch-norm gamma, beta); a
    ValueError when the layers or parameter counts differ."""
    import torch

    mods = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.BatchNorm2d)]
    layers = [layer for layer in model.layers if layer.params]
    ours = sum(v.size for layer in layers for v in layer.params.values())
    if len(mods) != len(layers) or ours != sum(p.numel() for p in net.parameters()):
        raise ValueError("the PyTorch network does not have cvtool's layers")
    with torch.no_grad():
        for mod, layer in zip(mods, layers, strict=True):
            p = layer.params
            conv = isinstance(mod, torch.nn.Conv2d)
            w, b = (p["W"].transpose(3, 2, 0, 1), p["b"]) if conv else (p["gamma"], p["beta"])
            mod.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            mod.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))


def initial_model(text: str, input_shape: tuple[int, int, int], init: str, seed: int):
    """The network cvtool's trainer starts from (float32 NumPy, built with `seed`)."""
    from cvtool.nn.cnn import cnn_model

    return cnn_model(text, input_shape, init=init).build(np, "float32", seed)


def check_same_network(text: str, input_shape: tuple[int, int, int], init: str) -> float:
    """Largest |cvtool - PyTorch| output of `text` with cvtool's weights copied into the
    PyTorch net, in training mode (batch statistics) and in inference mode, on 4 random
    images; a ValueError when the parameter counts or shapes differ."""
    import torch

    from cvtool.nn.cnn import cnn_model

    model = cnn_model(text, input_shape, init=init).build(np, "float64", 0)
    net = torch_net(text, input_shape, init).double()
    copy_weights(net, model)
    x = np.random.default_rng(0).random((4, *input_shape))
    worst = 0.0
    for training in (True, False):  # training first: both update their running statistics
        net.train(training)
        with torch.no_grad():
            ref = net(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
        worst = max(worst, float(np.abs(model.forward(x, training) - ref).max()))
    return worst


def summarise(per_seed: list[dict], quality: tuple[str, ...], title: str, json_path, meta):
    """Print the per-seed rows and the medians over seeds (cvtool vs torch); write JSON."""
    report(f"{title}: per seed (seconds = median epoch time)", per_seed, baseline="torch",
           columns=("seed", "seconds", "peak_mb", *quality))  # fmt: skip
    summary = []
    for name in ("cvtool", "torch"):
        rows = [r for r in per_seed if r["name"] == name]
        row = {"name": name, "seeds": len(rows),
               "seconds": statistics.median(r["seconds"] for r in rows),
               "peak_mb": max(r["peak_mb"] for r in rows)}  # fmt: skip
        for q in quality:
            row[q] = statistics.median(r[q] for r in rows)
        summary.append(row)
    cv, pt = summary
    diffs = {}
    for q in quality:
        per = [a[q] - b[q] for a, b in zip(per_seed[::2], per_seed[1::2], strict=True)]
        diffs[f"{q}_diff"] = cv[q] - pt[q]
        diffs[f"{q}_diff_per_seed"] = [round(d, 4) for d in per]
    cv.update({k: v for k, v in diffs.items() if not k.endswith("per_seed")})
    report(f"{title}: medians over seeds (*_diff = cvtool - torch)", summary,
           baseline="torch", columns=("seeds", "seconds", "peak_mb", *quality))  # fmt: skip
    ratio = cv["seconds"] / pt["seconds"]
    q0 = quality[0]
    print(f"targets: |{q0} diff| {abs(cv[q0] - pt[q0]):.3f} <= 0.03: "
          f"{'yes' if abs(cv[q0] - pt[q0]) <= 0.03 else 'NO'}; "
          f"epoch time ratio {ratio:.2f} <= 1.2: {'yes' if ratio <= 1.2 else 'NO'}")  # fmt: skip
    for q in quality:
        print(f"{q} cvtool - torch per seed: {diffs[f'{q}_diff_per_seed']}")
    if json_path:
        doc = {"title": title, "python": sys.version.split()[0], **meta,
               "summary": summary, "per_seed": per_seed, **diffs}  # fmt: skip
        Path(json_path).write_text(json.dumps(doc, indent=2, default=str))
        print(f"(written to {json_path})")


# ---------------------------------------------------------------- detection


def _spec() -> str:
    from cvtool.detect.train import DETECTOR

    head = 5 * BOXES + 10
    return DETECTOR.replace("{head}", str(head)).replace("{pool}", str(64 // (4 * GRID)))


def check_network() -> float:
    """check_same_network on the detector."""
    return check_same_network(_spec(), (64, 64, 1), "pytorch")


def check_loss() -> float:
    """Largest relative difference of yolo_loss_torch and YoloLoss (value and gradient, float64)
    on real canvases' targets and a random head output."""
    import torch

    from cvtool.data.canvas import canvas_streams
    from cvtool.detect.yolo import encode_targets

    _, cs, _, _ = canvas_streams(8, 0, 0, seed=0)
    y = encode_targets(cs.boxes, cs.labels, grid=GRID, num_classes=10, image_size=64,
                       dtype=np.float64)  # fmt: skip
    a = np.random.default_rng(1).normal(0.5, 0.5, (8, GRID, GRID, 5 * BOXES + 10))
    value, g = _task().loss.loss_and_grad(a, y)
    at = torch.from_numpy(a).requires_grad_(True)
    ref = yolo_loss_torch(torch, at, torch.from_numpy(y))
    ref.backward()
    gt = at.grad.numpy()
    return max(abs(value - float(ref.detach())) / abs(value),
               float(np.abs(g / len(a) - gt).max() / np.abs(gt).max()))  # fmt: skip


def _task():
    from cvtool.detect.task import Detection
    from cvtool.detect.yolo import YoloLoss

    names = tuple(str(d) for d in range(10))
    return Detection(YoloLoss(GRID, BOXES, len(names)), (64, 64), names)


def _score(task, net, images, labels) -> dict:
    """cvtool's COCO evaluation of a network (anything with forward(x NHWC float) -> NHWC)."""
    got = task.scores(net, images.astype(np.float32) / np.float32(255), labels)
    return {"map50": got["map50"], "map": got["map"], "detections": got["detections"]}


def train_cvtool(sets, val, test, epochs, seed, threads, eta, same_init=False):  # noqa: ARG001
    """train_detector on the given canvases; (epoch seconds, val map50 per epoch, test scores)."""
    limit_threads(threads)
    from cvtool.data.canvas import TrainingData
    from cvtool.data.core import Dataset
    from cvtool.detect.task import labels_of
    from cvtool.detect.train import train_detector

    first = sets[0]
    ds = Dataset("canvases", first.images, labels_of(first), test.images, labels_of(test),
                 first.class_names)  # fmt: skip

    def epoch_data(epoch):
        s = sets[epoch - 1]
        return s.images, labels_of(s)

    data = TrainingData(ds, (val.images, labels_of(val)), epoch_data, "bench canvases")
    result = train_detector(data, grid=GRID, boxes_per_cell=BOXES, epochs=epochs,
                            batch_size=BATCH, optimizer="adam", eta=eta, seed=seed)  # fmt: skip
    assert result.stopped == "completed", result.stopped
    recs = result.history.records
    test_scores = _score(_task(), result.model, test.images, labels_of(test))
    assert abs(test_scores["map50"] - result.test["map50"]) < 1e-9  # the trainer's own figure
    return {
        "epoch_seconds": [r["train_seconds"] for r in recs],
        "val_map50": [r.get("val_map50") for r in recs],
        "train_cost": [r.get("train_cost") for r in recs],
        **test_scores,
    }


def yolo_loss_torch(torch, a, y, s=GRID, nb=BOXES, lc=5.0, ln=0.5):
    """YoloLoss('bce', conf_target 'iou') in PyTorch ops (tests/test_detect_yolo.py's
    ``_torch_loss``): a (N, S, S, 5B + C) raw head, y (N, S, S, 5 + C) targets; batch mean."""
    n = a.shape[0]
    box = a[..., : 5 * nb].reshape(n, s, s, nb, 5)
    obj, truth, onehot = y[..., 0], y[..., None, 1:5], y[..., 5:]
    with torch.no_grad():  # the responsible predictor and the IoU target are constants
        p, t = box[..., :4], truth
        pw, ph, tw, th = p[..., 2] ** 2, p[..., 3] ** 2, t[..., 2] ** 2, t[..., 3] ** 2
        px, py, tx, ty = p[..., 0] / s, p[..., 1] / s, t[..., 0] / s, t[..., 1] / s
        iw = torch.minimum(px + pw / 2, tx + tw / 2) - torch.maximum(px - pw / 2, tx - tw / 2)
        ih = torch.minimum(py + ph / 2, ty + th / 2) - torch.maximum(py - ph / 2, ty - th / 2)
        inter = iw.clamp(min=0) * ih.clamp(min=0)
        iou = inter / (pw * ph + tw * th - inter).clamp(min=1e-12)
        resp = torch.nn.functional.one_hot(iou.argmax(-1), nb).to(a.dtype) * obj[..., None]
    coord = lc * (resp[..., None] * (box[..., :4] - truth) ** 2).sum()
    z = box[..., 4]
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    conf = (resp * bce(z, iou, reduction="none")).sum()
    conf = conf + ln * ((1 - resp) * bce(z, torch.zeros_like(z), reduction="none")).sum()
    cls = -(obj[..., None] * onehot * torch.log_softmax(a[..., 5 * nb :], -1)).sum()
    return (coord + conf + cls) / n


class TorchForward:
    """cvtool's ``model.forward`` face on a PyTorch net: NHWC float in, NHWC NumPy out."""

    def __init__(self, torch, net):
        self.torch, self.net = torch, net

    def forward(self, x, training=False):
        with self.torch.no_grad():
            out = self.net(self.torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2))
        return out.permute(0, 2, 3, 1).contiguous().numpy()


def train_torch(sets, val, test, epochs, seed, threads, eta, same_init=False):
    """The same training in PyTorch; (epoch seconds, val map50 per epoch, test scores).
    `same_init`: start from the very weights cvtool starts from (not only their family)."""
    import torch

    from cvtool.detect.task import labels_of
    from cvtool.detect.yolo import encode_targets

    limit_threads(threads, torch)
    torch.manual_seed(seed)
    task = _task()
    net = torch_net(_spec(), (64, 64, 1), init="pytorch")
    if same_init:
        copy_weights(net, initial_model(_spec(), (64, 64, 1), "pytorch", seed))
    opt = torch.optim.Adam(net.parameters(), lr=eta, betas=(0.9, 0.999), eps=1e-8)
    orders = shuffles(seed, epochs, len(sets[0].images))
    fwd = TorchForward(torch, net)
    seconds, val_map, costs = [], [], []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        cs = sets[epoch]
        x = to_nchw(torch, cs.images)
        y = torch.from_numpy(encode_targets(cs.boxes, cs.labels, grid=GRID, num_classes=10,
                                            image_size=64))  # fmt: skip
        order = torch.from_numpy(orders[epoch])
        net.train()
        total = 0.0
        for s in range(0, len(x), BATCH):
            idx = order[s : s + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = yolo_loss_torch(torch, net(x[idx]).permute(0, 2, 3, 1), y[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        seconds.append(time.perf_counter() - t0)
        costs.append(total / len(x))
        net.eval()
        val_map.append(_score(task, fwd, val.images, labels_of(val))["map50"])
    net.eval()
    return {"epoch_seconds": seconds, "val_map50": val_map, "train_cost": costs,
            **_score(task, fwd, test.images, labels_of(test))}  # fmt: skip


def parse_args(argv, trainer_name: str, description: str = __doc__):
    """The options both training benchmarks take (`description`: the calling script's docstring)."""
    parser = argparse.ArgumentParser(description=description.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (medians over them)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--train-size", type=int, default=2000, help="training canvases per epoch")
    parser.add_argument("--val-size", type=int, default=200)
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    parser.add_argument("--eta", type=float, default=None,
                        help=f"Adam's learning rate for both (default: {trainer_name}'s)")  # fmt: skip
    parser.add_argument("--same-init", action="store_true",
                        help="PyTorch starts from cvtool's initial weights (default: each "
                        "library draws its own from the same family)")  # fmt: skip
    parser.add_argument("--json", dest="json_path", default=None, help="write results here")
    return parser.parse_args(argv)


def compare(args, what: str, trainer, trainers, checks, row_of, line_of, quality, title) -> None:
    """Both libraries trained on the same canvases for each seed, in forked children.

    trainer : the cvtool training call (its default learning rate is the default).
    trainers : (cvtool's, PyTorch's) training functions of the benchmark.
    checks : (network check, loss check), run in children first.
    row_of(got) : the quality figures of one run; line_of(row) : its printed line.
    """
    eta = trainer_eta(trainer) if args.eta is None else args.eta
    load = os.getloadavg()[0]
    print(f"{what}, {args.train_size} fresh canvases/epoch, {args.epochs} epochs, batch {BATCH}, "
          f"Adam {eta:g}, {args.seeds} seed(s); val {args.val_size}, test {args.test_size}; "
          f"threads {args.threads}; {'same initial weights; ' if args.same_init else ''}"
          f"{os.cpu_count()} CPUs, load average at start {load:.2f}", flush=True)  # fmt: skip
    # in children: the parent must not start PyTorch's thread pool (a forked child would hang)
    net_diff, loss_diff = (run_isolated(check)[0] for check in checks)
    print(f"same network: {net_diff:.2g} largest |cvtool - torch| output (float64, cvtool's "
          f"weights copied); same loss: {loss_diff:.2g} largest relative difference")  # fmt: skip
    per_seed = []
    for seed in range(args.seeds):
        sets, val, test = canvas_epochs(seed, args.epochs, args.train_size, args.val_size,
                                        args.test_size)  # fmt: skip
        for name, fn in zip(("cvtool", "torch"), trainers, strict=True):
            got, _, peak = run_isolated(fn, sets, val, test, args.epochs, seed, args.threads,
                                        eta, args.same_init)  # fmt: skip
            row = {"name": name, "seed": seed,
                   "seconds": statistics.median(got["epoch_seconds"]), "peak_mb": peak,
                   **row_of(got),
                   "epoch_seconds": [round(v, 3) for v in got["epoch_seconds"]],
                   "train_cost": [None if v is None else round(v, 4) for v in got["train_cost"]]}  # fmt: skip
            print(f"seed {seed} {name}: {row['seconds']:.2f} s/epoch, {line_of(row)}", flush=True)
            per_seed.append(row)
    end = os.getloadavg()[0]
    print(f"load average at end {end:.2f}")
    meta = {"epochs": args.epochs, "train_size": args.train_size, "val_size": args.val_size,
            "test_size": args.test_size, "threads": args.threads, "batch": BATCH,
            "same_init": args.same_init, "eta": eta,
            "load_average": [load, end]}  # fmt: skip
    summarise(per_seed, quality, title, args.json_path, meta)


def main(argv=None) -> None:
    from cvtool.detect.train import train_detector

    args = parse_args(argv, "train_detector")

    def row_of(got):
        return {"test_map50": got["map50"], "test_map": got["map"],
                "detections": got["detections"],
                "val_map50": [None if v is None else round(v, 4) for v in got["val_map50"]]}  # fmt: skip

    def line_of(row):
        return (f"test mAP@0.5 {row['test_map50']:.3f}, mAP {row['test_map']:.3f}, "
                f"val mAP@0.5 by epoch {row['val_map50']}")  # fmt: skip

    compare(args, f"detector {GRID}x{GRID}xB{BOXES}", train_detector, (train_cvtool, train_torch),
            (check_network, check_loss), row_of, line_of, ("test_map50", "test_map"),
            "bench_detect")  # fmt: skip


if __name__ == "__main__":
    main()
