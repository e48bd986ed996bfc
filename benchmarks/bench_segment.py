"""Training the FCN segmenter end to end: cvtool (NumPy) against the same network in PyTorch.

Issue 15's benchmark. Both sides train ``cvtool.segment.SEGMENTER`` (three
conv + max-pool stages, nearest upsampling back with ``concat`` skips, a 1x1
conv to 11 logits per pixel; init 'he') with the per-pixel log-likelihood
weighted by median-frequency class weights
(``cvtool.segment.task.class_weights`` of the first training set, what
``train_segmenter(weights='auto')`` uses; PyTorch's ``cross_entropy`` with
``weight=``), and then are scored by the same code: cvtool's confusion
matrix and ``metrics_from_confusion`` (``cvtool.boxes.masks``, what
``cvtool iou seg`` reports), PyTorch's argmax label maps fed through it.
What is the same on both sides (the plumbing is ``bench_detect``'s):

- data: ``canvas_streams(seed=SEED)``'s canvases drawn once in the parent:
  the first training set, then ``generator.sample(n)`` for each later epoch
  (``train_segmenter``'s fresh canvases), the validation and the test set;
- network: the spec parsed by ``cvtool.nn.spec.parse_spec`` and rebuilt in
  PyTorch (NCHW; conv 3x3 padding 1, ``MaxPool2d(2)``, ``Upsample(2,
  'nearest')``, ``torch.cat([main, tapped])`` as cvtool's ``Concat``);
  weights from the same family (N(0, 2/fan_in), zero biases), seeded by
  each library's own RNG;
- training: Adam (betas 0.9/0.999, eps 1e-8; eta ``--eta``, default the trainer's
  default, read from its signature), batch 32, the same
  epochs, the same mini-batches in the same order (cvtool's shuffle
  replayed), ``--threads`` (default 2) for both;
- epoch time: cvtool's ``train_seconds`` (data preparation and steps, no
  validation) and the same span in PyTorch. Both score the validation set
  after each epoch (not timed).

Each side of each seed runs in its own forked child: ``peak_mb`` is its
high-water resident set above what it inherited. Reported per side: test
mean IoU over all 11 classes (background included) and over the 10 digit
classes, median epoch seconds, peak MiB, and the cvtool/PyTorch epoch-time
ratio and IoU differences; medians over ``--seeds`` seeds. Issue 15's targets:
mean IoU within 0.03 of PyTorch's (median of 3 seeds), epoch time at most 1.2x.

    python benchmarks/bench_segment.py                                  # 3 seeds, 20 epochs, 2,000
    python benchmarks/bench_segment.py --seeds 1 --epochs 3 --train-size 500 --json out.json

Not a test: nothing here asserts a speed or a score.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_detect import (  # noqa: E402
    check_same_network,
    compare,
    copy_weights,
    initial_model,
    limit_threads,
    parse_args,
    shuffles,
    to_nchw,
    torch_net,
)

BATCH = 32
CLASSES = 11  # background + 10 digits
EVAL_BATCH = 128


def _spec() -> str:
    from cvtool.segment import SEGMENTER

    return SEGMENTER.replace("{classes}", str(CLASSES))


def seg_scores(pred, truth) -> dict:
    """Mean IoU over all classes and over the digits (1..10) of label maps (N, H, W), from
    cvtool's confusion matrix (``Segmentation.evaluate``'s figures)."""
    from cvtool.boxes.masks import confusion_matrix, metrics_from_confusion

    m = metrics_from_confusion(confusion_matrix(pred, truth, CLASSES, None))
    digits = [float(v) for v in m["per_class_iou"][1:] if v == v]
    return {"mean_iou": float(m["mean_iou"]),
            "mean_iou_digits": float(np.mean(digits)) if digits else float("nan"),
            "pixel_accuracy": float(m["pixel_accuracy"])}  # fmt: skip


def check_network() -> float:
    """check_same_network on the segmenter."""
    return check_same_network(_spec(), (64, 64, 1), "he")


def check_loss() -> float:
    """Largest relative difference of PyTorch's weighted cross_entropy and cvtool's
    Segmentation cost (value and gradient, float64) on real label maps and random logits."""
    import torch

    from cvtool.data.canvas import canvas_streams
    from cvtool.segment.task import Segmentation, class_weights

    _, cs, _, _ = canvas_streams(4, 0, 0, seed=0)
    y = cs.label_maps.astype(np.int64)
    w = class_weights(cs.label_maps, CLASSES)
    a = np.random.default_rng(1).normal(0.0, 2.0, (*y.shape, CLASSES))
    task = Segmentation(CLASSES, weight=w)
    value, g = task.fn(a, y.astype(np.int32)), task.grad(a, y.astype(np.int32)) / len(a)
    at = torch.from_numpy(a).requires_grad_(True)
    ref = torch.nn.functional.cross_entropy(at.permute(0, 3, 1, 2), torch.from_numpy(y),
                                            weight=torch.tensor(w, dtype=torch.float64))  # fmt: skip
    ref.backward()
    gt = at.grad.numpy()
    return max(abs(value - float(ref.detach())) / abs(value),
               float(np.abs(g - gt).max() / np.abs(gt).max()))  # fmt: skip


def train_cvtool(sets, val, test, epochs, seed, threads, eta, same_init=False):  # noqa: ARG001
    """train_segmenter on the given canvases; (epoch seconds, val mean IoU per epoch, test)."""
    limit_threads(threads)
    from cvtool.data.canvas import TrainingData
    from cvtool.data.core import Dataset
    from cvtool.segment import predict_maps, train_segmenter

    first = sets[0]
    names = ("background", *first.class_names)
    ds = Dataset("canvases", first.images, first.label_maps, test.images, test.label_maps, names)

    def epoch_data(epoch):
        s = sets[epoch - 1]
        return s.images, s.label_maps

    data = TrainingData(ds, (val.images, val.label_maps), epoch_data, "bench canvases")
    result = train_segmenter(data, epochs=epochs, batch_size=BATCH, optimizer="adam", eta=eta,
                             weights="auto", seed=seed)  # fmt: skip
    assert result.stopped == "completed", result.stopped
    recs = result.history.records
    got = seg_scores(predict_maps(result.model, test.images), test.label_maps)
    assert abs(got["mean_iou"] - result.test["mean_iou"]) < 1e-9  # the trainer's own figure
    return {
        "epoch_seconds": [r["train_seconds"] for r in recs],
        "val_mean_iou": [r.get("val_mean_iou") for r in recs],
        "train_cost": [r.get("train_cost") for r in recs],
        **got,
    }


def _torch_maps(torch, net, images) -> np.ndarray:
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), EVAL_BATCH):
            out.append(net(to_nchw(torch, images[i : i + EVAL_BATCH])).argmax(1).numpy())
    return np.concatenate(out).astype(np.uint8)


def train_torch(sets, val, test, epochs, seed, threads, eta, same_init=False):
    """The same training in PyTorch; (epoch seconds, val mean IoU per epoch, test).
    `same_init`: start from the very weights cvtool starts from (not only their family)."""
    import torch

    from cvtool.segment.task import class_weights

    limit_threads(threads, torch)
    torch.manual_seed(seed)
    net = torch_net(_spec(), (64, 64, 1), init="he")
    if same_init:
        copy_weights(net, initial_model(_spec(), (64, 64, 1), "he", seed))
    opt = torch.optim.Adam(net.parameters(), lr=eta, betas=(0.9, 0.999), eps=1e-8)
    weight = torch.tensor(class_weights(sets[0].label_maps, CLASSES), dtype=torch.float32)
    orders = shuffles(seed, epochs, len(sets[0].images))
    seconds, val_iou, costs = [], [], []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        cs = sets[epoch]
        x = to_nchw(torch, cs.images)
        y = torch.from_numpy(cs.label_maps.astype(np.int64))
        order = torch.from_numpy(orders[epoch])
        net.train()
        total = 0.0
        for s in range(0, len(x), BATCH):
            idx = order[s : s + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx], weight=weight)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        seconds.append(time.perf_counter() - t0)
        costs.append(total / len(x))
        val_iou.append(seg_scores(_torch_maps(torch, net, val.images), val.label_maps)["mean_iou"])
    got = seg_scores(_torch_maps(torch, net, test.images), test.label_maps)
    return {"epoch_seconds": seconds, "val_mean_iou": val_iou, "train_cost": costs, **got}


def main(argv=None) -> None:
    from cvtool.segment import train_segmenter

    args = parse_args(argv, "train_segmenter", __doc__)

    def row_of(got):
        return {"test_mean_iou": got["mean_iou"], "test_mean_iou_digits": got["mean_iou_digits"],
                "test_pixel_accuracy": got["pixel_accuracy"],
                "val_mean_iou": [None if v is None else round(v, 4) for v in got["val_mean_iou"]]}  # fmt: skip

    def line_of(row):
        return (f"test mean IoU {row['test_mean_iou']:.3f} (digits "
                f"{row['test_mean_iou_digits']:.3f}), val mean IoU by epoch {row['val_mean_iou']}")  # fmt: skip

    compare(args, f"segmenter ({CLASSES} classes)", train_segmenter, (train_cvtool, train_torch),
            (check_network, check_loss), row_of, line_of,
            ("test_mean_iou", "test_mean_iou_digits"), "bench_segment")  # fmt: skip


if __name__ == "__main__":
    main()
