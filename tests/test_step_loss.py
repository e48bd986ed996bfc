"""The training loop's one-pass step loss: loss_and_grad equals (fn, grad) for each task."""

from __future__ import annotations

import numpy as np

from cvtool.detect.task import Detection
from cvtool.detect.yolo import YoloLoss
from cvtool.segment.task import Segmentation


def test_segmentation_loss_and_grad_is_fn_and_grad():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4, 5, 3))  # (N, H, W, K) logits
    y = rng.integers(0, 3, size=(3, 4, 5)).astype(np.int32)
    task = Segmentation(3, weight=[0.2, 1.0, 3.0])
    cost, grad = task.loss_and_grad(a, y)
    assert cost == task.fn(a, y)
    np.testing.assert_allclose(grad, task.grad(a, y), rtol=1e-14, atol=1e-16)


def test_detection_loss_and_grad_is_fn_and_grad():
    rng = np.random.default_rng(1)
    loss = YoloLoss(4, 2, 3)
    a = rng.normal(size=(2, 4, 4, 13))  # (N, S, S, 5B + C)
    y = np.zeros((2, 4, 4, 8))
    y[:, 1, 2, 0] = 1.0
    y[:, 1, 2, 1:5] = rng.uniform(0.1, 0.9, size=(2, 4))
    y[:, 1, 2, 6] = 1.0
    task = Detection(loss, (32, 32), ("a", "b", "c"))
    cost, grad = task.loss_and_grad(a, y)
    assert cost == task.fn(a, y)
    np.testing.assert_array_equal(grad, task.grad(a, y))
