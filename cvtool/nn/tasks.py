"""What a network is trained to do: the task that ``fit`` and ``train`` are given.

A task turns the labels of a data set into training targets on the device,
gives the cost and its gradient, and scores a network on a split. ``fit``
drives any task the same way; this module holds the protocol and the
classification task, the course's first one. The grid detector
(:mod:`cvtool.detect.task`) and the per-pixel segmenter
(:mod:`cvtool.nn.pixelwise`) are the other two.

A task has:

- ``name`` and ``score``: the name of the cost and of the score that
  validation watches ("accuracy", "map50", "mean_iou"; higher is better);
- ``fused``: the output activation whose backward the cost absorbs (the
  output error is then ``a - Y``), or None;
- ``targets(model, y) -> Y``: labels as targets on the model's device, one
  row per example, so ``fit`` gathers a mini-batch of them as it gathers the
  inputs;
- ``fn(a, Y) -> float`` (the batch mean of the cost) and ``grad(a, Y)``
  (dC/da per example: ``fit`` divides by the batch size once);
- ``measure(model, x, y, Y, lmbda, n_train) -> dict`` with ``cost`` (the L2
  term included) and the score, on prepared inputs, in chunks;
- ``evaluate(model, x, y) -> dict``: the one test-split report;
- ``check(model, dataset)``: a CvtoolError when the network cannot serve the
  data (before any training);
- ``running``: True when ``fit`` may score the epoch's own step outputs (kept
  in one (N, K) array) instead of making a full extra pass.
"""

from __future__ import annotations

from cvtool.errors import CvtoolError
from cvtool.nn.losses import get_loss


class Classification:
    """Class labels (N,) against network outputs (N, K): Nielsen's costs, accuracy."""

    score = "accuracy"
    running = True

    def __init__(self, cost: str = "cross-entropy"):
        self.cost = get_loss(cost)
        self.name = self.cost.name
        self.fused = self.cost.fused

    def targets(self, model, y):
        return model.one_hot(y)

    def fn(self, a, Y) -> float:
        return self.cost.fn(a, Y)

    def grad(self, a, Y):
        return self.cost.grad(a, Y)

    def measure(self, model, x, y, Y, lmbda: float, n_train: int) -> dict:
        cost, acc = model._measure(x, Y, self.cost, lmbda, n_train)
        return {"cost": cost, "accuracy": acc}

    def evaluate(self, model, x, y) -> dict:
        return model.evaluate(x, y, self.name)

    def check(self, model, dataset) -> None:
        k = model.output_shape[-1]
        if len(model.output_shape) != 1 or k < dataset.num_classes:
            raise CvtoolError(
                f"The network's output {model.output_shape} must be ({dataset.num_classes},): one "
                f"unit per class of {dataset.name}. Change the last layer's size."
            )

    def config(self) -> dict:
        return {"cost": self.name}


def get_task(task_or_cost):
    """A task object: as given, or :class:`Classification` for a cost name."""
    if isinstance(task_or_cost, str):
        return Classification(task_or_cost)
    return task_or_cost
