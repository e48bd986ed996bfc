"""YOLO grid detector: target encoding, loss gradients (finite differences, PyTorch), decoding."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error
from hypothesis import given, settings
from hypothesis import strategies as st

from cvtool import shapes
from cvtool.backend import to_numpy
from cvtool.detect import YoloLoss, decode, encode_targets
from cvtool.errors import CvtoolError

S, B, C, SIZE = 4, 2, 3, 32


def _ground_truth():
    """Two images: three boxes in distinct cells, and one box (xywh pixels, classes)."""
    boxes = [
        np.array([[2.0, 3.0, 10.0, 6.0], [17.0, 9.0, 12.0, 14.0], [4.0, 20.0, 20.0, 11.0]]),
        np.array([[9.0, 12.0, 5.0, 9.0]]),
    ]
    classes = [np.array([2, 0, 1]), np.array([1])]
    return boxes, classes


def _perfect_head(y, big=20.0):
    """A head output that predicts the targets exactly: box 0 of each object cell is the
    truth with a confident logit, every other predictor a confident 'no object'."""
    n = y.shape[0]
    a = np.zeros((n, S, S, 5 * B + C))
    box = a[..., : 5 * B].reshape(n, S, S, B, 5)
    box[..., 2:4] = 0.3  # other predictors: some box, confidently absent
    box[..., 4] = -big
    obj = y[..., 0] > 0
    box[obj, 0, :4] = y[obj][:, 1:5]
    box[obj, 0, 4] = big
    a[..., 5 * B :] = big * y[..., 5:]
    return a


def _near_head(y, rng):
    """Predictions near the truth, B boxes at distinct IoUs (no argmax ties), smooth points."""
    a = _perfect_head(y, big=0.0) + rng.normal(0, 0.3, size=(y.shape[0], S, S, 5 * B + C))
    box = a[..., : 5 * B].reshape(y.shape[0], S, S, B, 5)
    obj = y[..., 0] > 0
    box[obj, 1, :4] = y[obj][:, 1:5] + np.array([0.35, -0.3, 0.1, 0.15])
    box[obj, 0, :4] = y[obj][:, 1:5] + rng.normal(0, 0.03, size=(int(obj.sum()), 4))
    return a


def _targets():
    boxes, classes = _ground_truth()
    return encode_targets(boxes, classes, grid=S, num_classes=C, image_size=SIZE, dtype=np.float64)


@pytest.mark.parametrize("variant", ["bce", "v1"])
def test_loss_gradient_matches_finite_differences(xp, variant):
    y = _targets()
    a = _near_head(y, np.random.default_rng(0))
    loss = YoloLoss(S, B, C, variant=variant, conf_target="one")
    ax, yx = xp.asarray(a), xp.asarray(y)
    g = to_numpy(loss.grad(ax, yx)) / len(a)  # grad is per image; fn is the batch mean
    num = numeric_grad(lambda: loss.fn(ax, yx), ax)
    assert rel_error(g, num) < 1e-6
    value, g2 = loss.loss_and_grad(ax, yx)
    assert float(value) == pytest.approx(loss.fn(ax, yx))  # value: a 0-d device array
    np.testing.assert_allclose(to_numpy(g2) / len(a), g)


@pytest.mark.parametrize("variant", ["bce", "v1"])
def test_iou_target_gradient_on_confidence_and_classes(variant):
    """With the IoU as confidence target (a constant, not differentiated), the gradient
    with respect to the confidence and class logits is still the exact derivative."""
    y = _targets()
    a = _near_head(y, np.random.default_rng(1))
    loss = YoloLoss(S, B, C, variant=variant, conf_target="iou")
    g = loss.grad(a, y) / len(a)
    num = numeric_grad(lambda: loss.fn(a, y), a)
    conf = np.zeros(a.shape[-1], bool)
    conf[4 : 5 * B : 5] = True
    conf[5 * B :] = True
    assert rel_error(g[..., conf], num[..., conf]) < 1e-6


def _torch_loss(torch, a, y, variant, conf_target, lc=5.0, ln=0.5):
    """The loss written again with PyTorch ops (autograd gives the gradient)."""
    n = a.shape[0]
    box = a[..., : 5 * B].reshape(n, S, S, B, 5)
    obj, truth, onehot = y[..., 0], y[..., None, 1:5], y[..., 5:]
    with torch.no_grad():
        p, t = box[..., :4], truth
        pw, ph, tw, th = p[..., 2] ** 2, p[..., 3] ** 2, t[..., 2] ** 2, t[..., 3] ** 2
        px, py, tx, ty = p[..., 0] / S, p[..., 1] / S, t[..., 0] / S, t[..., 1] / S
        iw = torch.minimum(px + pw / 2, tx + tw / 2) - torch.maximum(px - pw / 2, tx - tw / 2)
        ih = torch.minimum(py + ph / 2, ty + th / 2) - torch.maximum(py - ph / 2, ty - th / 2)
        inter = iw.clamp(min=0) * ih.clamp(min=0)
        iou = inter / (pw * ph + tw * th - inter)
        resp = torch.nn.functional.one_hot(iou.argmax(-1), B).double() * obj[..., None]
    coord = lc * (resp[..., None] * (box[..., :4] - truth) ** 2).sum()
    z = box[..., 4]
    target = iou if conf_target == "iou" else torch.ones_like(iou)
    logp = torch.log_softmax(a[..., 5 * B :], -1)
    if variant == "bce":
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        conf = (resp * bce(z, target, reduction="none")).sum()
        conf = conf + ln * ((1 - resp) * bce(z, torch.zeros_like(z), reduction="none")).sum()
        cls = -(obj[..., None] * onehot * logp).sum()
    else:
        sig = torch.sigmoid(z)
        conf = (resp * (sig - target) ** 2).sum() + ln * ((1 - resp) * sig**2).sum()
        cls = (obj[..., None] * (logp.exp() - onehot) ** 2).sum()
    return (coord + conf + cls) / n


@pytest.mark.parametrize("variant", ["bce", "v1"])
@pytest.mark.parametrize("conf_target", ["one", "iou"])
def test_loss_matches_torch_autograd(variant, conf_target):
    torch = pytest.importorskip("torch")
    y = _targets()
    a = _near_head(y, np.random.default_rng(2))
    a[0, 0, 0, 4] = 40.0  # a saturated logit: BCE must stay finite and exact
    loss = YoloLoss(S, B, C, variant=variant, conf_target=conf_target)
    value, g = loss.loss_and_grad(a, y)
    at = torch.from_numpy(a.copy()).requires_grad_(True)
    ref = _torch_loss(torch, at, torch.from_numpy(y), variant, conf_target)
    ref.backward()
    assert value == pytest.approx(float(ref.detach()), rel=1e-12)
    np.testing.assert_allclose(g / len(a), at.grad.numpy(), atol=1e-12)


def test_encode_targets_layout():
    boxes, classes = _ground_truth()
    y, dropped = encode_targets(
        boxes, classes, grid=S, num_classes=C, image_size=SIZE, return_dropped=True
    )
    assert y.shape == (2, S, S, 5 + C) and y.dtype == np.float32 and dropped == 0
    assert int(y[..., 0].sum()) == 4
    # box [17, 9, 12, 14]: centre (23, 16) -> cell (row 2, col 2) of 8-pixel cells
    cell = y[0, 2, 2]
    np.testing.assert_allclose(
        cell[:5], [1, 23 / 8 - 2, 16 / 8 - 2, (12 / 32) ** 0.5, (14 / 32) ** 0.5]
    )
    np.testing.assert_array_equal(cell[5:], [1, 0, 0])


def test_encode_targets_one_object_per_cell_keeps_the_larger():
    boxes = [np.array([[1.0, 1.0, 4.0, 4.0], [0.0, 0.0, 7.0, 6.0], [40.0, 1.0, 3.0, 3.0]])]
    y, dropped = encode_targets(
        boxes, [np.array([0, 1, 2])], grid=S, num_classes=C, image_size=SIZE, return_dropped=True
    )
    assert dropped == 2  # the smaller box in cell (0, 0) and the centre outside the image
    assert int(y[..., 0].sum()) == 1
    np.testing.assert_array_equal(y[0, 0, 0, 5:], [0, 1, 0])


def test_encode_targets_bad_input():
    with pytest.raises(CvtoolError, match="Class ids"):
        encode_targets([np.array([[1.0, 1.0, 4.0, 4.0]])], [np.array([3])], grid=S,
                       num_classes=C, image_size=SIZE)  # fmt: skip
    with pytest.raises(CvtoolError, match="one entry per image"):
        encode_targets([np.zeros((0, 4))], [], grid=S, num_classes=C, image_size=SIZE)
    with pytest.raises(CvtoolError, match="'grid'"):
        encode_targets([], [], grid=0, num_classes=C, image_size=SIZE)


def test_perfect_prediction_decodes_to_the_ground_truth():
    boxes, classes = _ground_truth()
    y = _targets()
    a = _perfect_head(y)
    out = decode(a, boxes_per_cell=B, num_classes=C, image_size=SIZE, score_threshold=0.5)
    for i in range(2):
        mine = out["image"] == i
        got = out["boxes"][mine]
        order = np.lexsort(got.T[::-1])
        want = np.lexsort(boxes[i].T[::-1])
        np.testing.assert_allclose(got[order], boxes[i][want], atol=1e-9)
        np.testing.assert_array_equal(out["classes"][mine][order], classes[i][want])
        assert np.all(out["scores"][mine] > 0.99)
    for variant in ("bce", "v1"):  # and the loss is (almost) zero there
        assert YoloLoss(S, B, C, variant=variant).fn(a, y) < 1e-6
        assert YoloLoss(S, B, C, variant=variant).fn(a + 0.1, y) > 1e-3


def test_decode_thresholds_nms_and_top_k():
    y = _targets()
    a = _perfect_head(y)
    box = a[..., : 5 * B].reshape(2, S, S, B, 5)
    obj = y[..., 0] > 0
    box[obj, 1, :4] = box[obj, 0, :4] + [0.02, 0.0, 0.0, 0.0]  # a near duplicate per object
    box[obj, 1, 4] = 2.0  # sigmoid ~ 0.88: scores below the original
    out = decode(a, boxes_per_cell=B, num_classes=C, image_size=SIZE, score_threshold=0.5)
    assert len(out["image"]) == 4  # duplicates suppressed by NMS
    out = decode(a, boxes_per_cell=B, num_classes=C, image_size=SIZE, iou_threshold=1.0,
                 score_threshold=0.5)  # fmt: skip
    assert len(out["image"]) == 8
    assert np.all(np.diff(out["scores"][out["image"] == 0]) <= 0)  # by decreasing score
    out = decode(a, boxes_per_cell=B, num_classes=C, image_size=SIZE, top_k=1)
    assert np.array_equal(np.bincount(out["image"]), [1, 1])
    with pytest.raises(CvtoolError, match=r"5B \+ C"):
        decode(a[..., :-1], boxes_per_cell=B, num_classes=C, image_size=SIZE)


def test_decode_clips_to_the_image():
    a = np.zeros((1, 2, 2, 5 + 1))
    a[0, 0, 0] = [0.1, 0.1, 1.0, 1.0, 5.0, 0.0]  # a whole-image box centred near a corner
    out = decode(a, boxes_per_cell=1, num_classes=1, image_size=(20, 40), score_threshold=0.9)
    np.testing.assert_allclose(out["boxes"], [[0.0, 0.0, 22.0, 11.0]])


def test_head_shape_and_checks():
    assert shapes.yolo_head_output(8, 2, 10) == (8, 8, 20)
    loss = YoloLoss(8, 2, 10)
    assert loss.head_shape == (8, 8, 20)
    with pytest.raises(CvtoolError, match="head must output"):
        loss.fn(np.zeros((1, 8, 8, 19)), np.zeros((1, 8, 8, 15)))
    with pytest.raises(CvtoolError, match="targets must have shape"):
        loss.fn(np.zeros((1, 8, 8, 20)), np.zeros((1, 8, 8, 14)))
    with pytest.raises(CvtoolError, match="'variant'"):
        YoloLoss(8, 2, 10, variant="v3")
    with pytest.raises(CvtoolError, match="'boxes_per_cell'"):
        shapes.yolo_head_output(8, 0, 10)


def test_conv_head_trains_on_a_fixed_batch():
    """A spec-built conv net with batch norm and a 1x1 conv head: the loss falls under Adam."""
    from cvtool.nn.model import Sequential
    from cvtool.nn.optim import Adam
    from cvtool.nn.spec import parse_spec

    boxes, classes = _ground_truth()
    y = encode_targets(boxes, classes, grid=S, num_classes=C, image_size=SIZE, dtype=np.float64)
    rng = np.random.default_rng(0)
    x = rng.random((2, SIZE, SIZE, 1))
    spec = f"input:{SIZE}x{SIZE}x1, conv:8x3:p=same, bn, relu, pool:2, conv:8x3:p=same, bn, relu, "
    spec += f"pool:4, conv:{5 * B + C}x1"
    model = Sequential.from_spec(parse_spec(spec)).build(np, "float64", seed=0)
    assert model.output_shape == shapes.yolo_head_output(S, B, C)
    loss = YoloLoss(S, B, C)
    opt = Adam(0.01)
    opt.bind([(p, layer.grads[k], k == "W") for layer in model.param_layers
              for k, p in layer.params.items()], len(x))  # fmt: skip
    first = loss.fn(model.forward(x, True), y)
    for _ in range(40):
        value, g = loss.loss_and_grad(model.forward(x, True), y)
        d = g / len(x)
        for layer in reversed(model.layers):
            d = layer.backward(d)
        opt.step()
    assert value < 0.2 * first


def test_detector_head_summary():
    from cvtool.nn.spec import parse_spec
    from cvtool.summary import detector_head, summarize

    spec = "input:64x64x1, conv:8x3:p=same, bn, relu, pool:2, conv:8x3:p=same, pool:4, conv:20x1"
    head = detector_head(summarize(parse_spec(spec)), 2, 10)
    assert head["grid"] == 8 and head["head_shape"] == (8, 8, 20)
    assert head["cell_size"] == (8.0, 8.0)
    # rf: 3, then 4 after pool:2 (jump 2), then 3x3 at jump 2 -> 8, pool:4 at jump 2 -> 14
    assert head["rf"] == (14, 14) and head["rf_cells"] == (1.75, 1.75)
    assert "1.75 cells" in head["note"] and "partial view" in head["note"]
    wide = detector_head(
        summarize(parse_spec(spec.replace("conv:20x1", "conv:20x5:p=same"))), 2, 10
    )
    assert wide["rf"] == (46, 46) and "partial view" not in wide["note"]  # 14 + 4 * 8
    with pytest.raises(CvtoolError, match=r"S x S x 20"):
        detector_head(summarize(parse_spec("input:64x48x1, conv:20x8:s=8")), 2, 10)
    with pytest.raises(CvtoolError, match=r"S x S x 21"):
        detector_head(summarize(parse_spec(spec)), 2, 11)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_encode_decode_round_trip_property(data):
    """Boxes whose centres lie in distinct cells come back exactly from a perfect head."""
    size, grid, k = 64, 8, 3
    cells = data.draw(
        st.lists(st.integers(0, grid * grid - 1), min_size=1, max_size=5, unique=True)
    )
    boxes, classes = [], []
    for cell in cells:
        row, col = divmod(cell, grid)
        cx = (col + data.draw(st.floats(0.05, 0.95))) * size / grid
        cy = (row + data.draw(st.floats(0.05, 0.95))) * size / grid
        w = data.draw(st.floats(0.05, 1.0)) * 2 * min(cx, size - cx)  # inside the image
        h = data.draw(st.floats(0.05, 1.0)) * 2 * min(cy, size - cy)
        boxes.append([cx - w / 2, cy - h / 2, w, h])
        classes.append(data.draw(st.integers(0, k - 1)))
    boxes, classes = np.array(boxes), np.array(classes)
    y = encode_targets([boxes], [classes], grid=grid, num_classes=k, image_size=size,
                       dtype=np.float64)  # fmt: skip
    a = np.zeros((1, grid, grid, 5 + k))  # B = 1: [x, y, sqrt w, sqrt h, conf], classes
    obj = y[..., 0] > 0
    a[..., 4] = np.where(obj, 30.0, -30.0)
    a[..., :4] = y[..., 1:5]
    a[..., 5:] = 30.0 * y[..., 5:]
    out = decode(a, boxes_per_cell=1, num_classes=k, image_size=size, iou_threshold=1.0,
                 score_threshold=0.5, top_k=None)  # fmt: skip
    got, want = out["boxes"], boxes
    go, wo = np.lexsort(got.T[::-1]), np.lexsort(want.T[::-1])
    np.testing.assert_allclose(got[go], want[wo], atol=1e-9)
    np.testing.assert_array_equal(out["classes"][go], classes[wo])
