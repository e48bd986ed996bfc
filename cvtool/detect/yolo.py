"""A YOLO-v1-style grid detector: target encoding, the loss and its gradient, decoding.

The image is cut into an S x S grid. The cell that holds a ground-truth box's
centre is responsible for it; each cell predicts B boxes and one set of C
class scores, so the detector's head output is (N, S, S, 5B + C) (e.g. a conv
layer with 5B + C filters on an S x S feature map; ``shapes.yolo_head_output``).
Channels of one cell, box b first::

    [x_b, y_b, sqrt_w_b, sqrt_h_b, conf_b] for b < B, then C class logits

``x, y`` are the box centre's offsets inside its cell (0..1, cell units),
``sqrt_w, sqrt_h`` the square roots of the box size relative to the image (as
YOLO v1, so an error on a small box costs more than the same error on a large
one); the decoded width is ``sqrt_w ** 2``, as in darknet. ``conf`` is a logit
(confidence = sigmoid(conf)) and the class scores are softmax logits.

Targets (:func:`encode_targets`) are one array (N, S, S, 5 + C) per batch:
``[object, x, y, sqrt_w, sqrt_h, one-hot class]`` per cell, so a training loop
can gather a mini-batch of targets as it gathers images. A cell holds one
object, as in YOLO v1; when two centres fall in one cell the larger box is kept.

The loss (:class:`YoloLoss`), summed over cells, with the responsible predictor
of a cell with an object being the one of its B boxes whose IoU with the truth
is highest (``resp``; every other predictor is ``noobj``)::

    lambda_coord * sum resp [(x - x^)^2 + (y - y^)^2 + (sqrt_w - sqrt_w^)^2 + (sqrt_h - sqrt_h^)^2]
    + confidence terms + class terms

``variant='v1'`` (the paper): squared errors on sigmoid(conf) against the
target, ``lambda_noobj`` times sigmoid(conf)^2 for the others, and squared
errors of the softmax class probabilities against the one-hot class.
``variant='bce'`` (the default, the documented improvement): binary
cross-entropy on the confidence logit (against the target for the responsible
box, against 0 weighted by ``lambda_noobj`` for the others) and softmax
cross-entropy for the classes. BCE's gradient on the logit is
``sigmoid(conf) - target``, which does not vanish in a saturated wrong
prediction as the squared error's ``2 (p - t) p (1 - p)`` does. The
confidence target is the IoU of the responsible prediction with the truth, as
in v1 (``conf_target='iou'``, a constant, not differentiated), or 1
(``conf_target='one'``).

Why these defaults. The PyTorch prototype of issue 14 (64x64 digit canvases,
8x8 grid, B=2) saw v1 collapse to no detections at all (mAP 0 after 36
epochs) and BCE + cross-entropy reach mAP@0.5 0.63 (0.74 with batch
normalisation and shifts). On cvtool itself (2,000 such canvases, 300 test
canvases, a four-block conv + batch-norm backbone with a 1x1 conv head, Adam
1e-3, batch 32, PyTorch's default initialisation, one seed), mAP@0.5 after 8
epochs was 0.17 for v1 (it learned, slowly, rather than collapsing), 0.36 for
BCE with target 1 and 0.48 for BCE with the IoU target; after 12 epochs BCE
gave 0.42 (target 1) and 0.53 (IoU target), COCO mAP 0.13 and 0.17. So
'bce' with the IoU target is the default: the score then ranks boxes by how
well they fit, which is what mAP rewards.

``fn`` is the batch mean of the per-image loss; ``grad`` (and
``loss_and_grad``) give the per-image gradient with respect to the raw head
output, as :mod:`cvtool.nn.losses` does, so a training loop divides by the
batch size once. No Python loop over cells or boxes anywhere in the loss.

Decoding (:func:`decode`): every predictor becomes a box (xywh pixels, clipped
to the image) with score sigmoid(conf) * max class probability and the argmax
class; boxes under ``score_threshold`` go, then per-class, per-image NMS
through :func:`cvtool.boxes.nms_per_image`. Left out: anchors (YOLO v2 on),
several classes per cell, multi-scale heads (SSD), objectness-free heads.
"""

from __future__ import annotations

import numpy as np

from cvtool import shapes
from cvtool.backend import array_module, to_numpy
from cvtool.boxes import nms_per_image
from cvtool.errors import CvtoolError, check_choice, check_int, check_number

VARIANTS = ("bce", "v1")
CONF_TARGETS = ("iou", "one")
_TINY = 1e-12


def _sigmoid(xp, z):
    return 0.5 * (1.0 + xp.tanh(0.5 * z))  # stable for large |z|


def _log_softmax(xp, z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))


def _image_size(image_size) -> tuple[int, int]:
    h, w = shapes.pair(image_size)
    check_int("image_size", h, low=1)
    check_int("image_size", w, low=1)
    return h, w


def encode_targets(
    boxes,
    classes,
    *,
    grid: int,
    num_classes: int,
    image_size,
    dtype=np.float32,
    xp=None,
    return_dropped: bool = False,
):
    """Per-cell YOLO targets from ground-truth boxes, one image at a time.

    Parameters
    ----------
    boxes : sequence of N arrays, shape (K_i, 4)
        Ground-truth boxes of each image, xywh in pixels.
    classes : sequence of N arrays of int, shape (K_i,)
        Class index (0..num_classes-1) of each box.
    grid : int
        S, the grid is S x S cells.
    num_classes : int
        C.
    image_size : int or (int, int)
        (H, W) of the images in pixels.
    dtype, xp
        Element type and array module of the result (NumPy by default).
    return_dropped : bool
        Also return how many boxes found no cell: a second centre in a cell
        (the smaller box is dropped), a centre outside the image, or an empty box.

    Returns
    -------
    array, shape (N, S, S, 5 + C)
        ``[object, x, y, sqrt_w, sqrt_h, one-hot class]`` per cell; zero where no
        object's centre lies. (With ``return_dropped``: that and an int.)

    Raises
    ------
    CvtoolError
        Mismatched lengths, boxes not (K, 4), class ids out of range.
    """
    s = check_int("grid", grid, low=1)
    c = check_int("num_classes", num_classes, low=1)
    h, w = _image_size(image_size)
    if len(boxes) != len(classes):
        raise CvtoolError(
            f"'boxes' and 'classes' must have one entry per image. "
            f"Got {len(boxes)} and {len(classes)}."
        )
    out = np.zeros((len(boxes), s, s, 5 + c), dtype=dtype)
    dropped = 0
    for n, (b, k) in enumerate(zip(boxes, classes, strict=True)):  # a loop over images only
        b = np.asarray(to_numpy(b), dtype=np.float64).reshape(-1, 4)
        k = np.asarray(to_numpy(k)).reshape(-1)
        if len(k) != len(b):
            raise CvtoolError(f"Image {n} has {len(b)} boxes but {len(k)} class ids.")
        if len(k) and (not np.issubdtype(k.dtype, np.integer) or k.min() < 0 or k.max() >= c):
            raise CvtoolError(
                f"Class ids must be ints in 0..{c - 1}. Image {n} has {k.tolist()} instead."
            )
        cx, cy = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2  # centres, pixels
        ok = (b[:, 2] > 0) & (b[:, 3] > 0) & (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
        gx, gy = cx / w * s, cy / h * s  # centres in cell units
        col = np.clip(np.floor(gx), 0, s - 1).astype(np.int64)
        row = np.clip(np.floor(gy), 0, s - 1).astype(np.int64)
        # One object per cell: visit the valid boxes largest first, keep each cell's first.
        order = np.nonzero(ok)[0]
        order = order[np.argsort(-(b[order, 2] * b[order, 3]), kind="stable")]
        _, first = np.unique(row[order] * s + col[order], return_index=True)
        keep = order[first]
        dropped += len(b) - len(keep)
        r, q = row[keep], col[keep]
        out[n, r, q, 0] = 1.0
        out[n, r, q, 1] = gx[keep] - q
        out[n, r, q, 2] = gy[keep] - r
        out[n, r, q, 3] = np.sqrt(np.minimum(b[keep, 2] / w, 1.0))
        out[n, r, q, 4] = np.sqrt(np.minimum(b[keep, 3] / h, 1.0))
        out[n, r, q, 5 + k[keep].astype(np.int64)] = 1.0
    out = out if xp is None else xp.asarray(out)
    return (out, dropped) if return_dropped else out


class YoloLoss:
    """YOLO's multi-part detection loss on the raw head output (module docstring).

    Parameters
    ----------
    grid : int
        S.
    boxes_per_cell : int
        B.
    num_classes : int
        C.
    variant : {'bce', 'v1'}
        'bce' (default): BCE on the confidence logit, softmax cross-entropy on
        the classes; 'v1': squared errors on sigmoid confidence and softmax
        probabilities, as the paper.
    lambda_coord, lambda_noobj : float
        Weights of the box terms and of the no-object confidence term (5, 0.5).
    conf_target : {'iou', 'one'}
        Confidence target of the responsible predictor: its IoU with the truth
        (YOLO v1's, the default) or 1.

    Notes
    -----
    ``fn(a, y)`` is the batch mean of the per-image loss for a head output
    ``a`` (N, S, S, 5B + C) and targets ``y`` (N, S, S, 5 + C) from
    :func:`encode_targets`; ``grad(a, y)`` is d(per-image loss)/da, shaped like
    ``a`` (the caller divides by N, as for :mod:`cvtool.nn.losses`).
    """

    name = "yolo"
    fused = None  # no output activation: the loss reads the raw head output

    def __init__(
        self,
        grid: int,
        boxes_per_cell: int,
        num_classes: int,
        *,
        variant: str = "bce",
        lambda_coord: float = 5.0,
        lambda_noobj: float = 0.5,
        conf_target: str = "iou",
    ):
        self.grid = check_int("grid", grid, low=1)
        self.boxes_per_cell = check_int("boxes_per_cell", boxes_per_cell, low=1)
        self.num_classes = check_int("num_classes", num_classes, low=1)
        self.variant = check_choice("variant", variant, VARIANTS)
        self.lambda_coord = check_number("lambda_coord", lambda_coord, low=0)
        self.lambda_noobj = check_number("lambda_noobj", lambda_noobj, low=0)
        self.conf_target = check_choice("conf_target", conf_target, CONF_TARGETS)

    def config(self) -> dict:
        return {
            "loss": self.name,
            "grid": self.grid,
            "boxes_per_cell": self.boxes_per_cell,
            "num_classes": self.num_classes,
            "variant": self.variant,
            "lambda_coord": self.lambda_coord,
            "lambda_noobj": self.lambda_noobj,
            "conf_target": self.conf_target,
        }

    @property
    def head_shape(self) -> tuple[int, int, int]:
        """(S, S, 5B + C), the head output this loss reads."""
        return shapes.yolo_head_output(self.grid, self.boxes_per_cell, self.num_classes)

    def check(self, a, y) -> None:
        """CvtoolError unless a is (N, S, S, 5B + C) and y is (N, S, S, 5 + C)."""
        s, c = self.grid, self.num_classes
        if tuple(a.shape[1:]) != self.head_shape:
            raise CvtoolError(
                f"The detector head must output {self.head_shape} per image "
                f"(S x S x (5B + C)). Got {tuple(a.shape[1:])} instead."
            )
        if tuple(y.shape) != (a.shape[0], s, s, 5 + c):
            raise CvtoolError(
                f"The targets must have shape {(a.shape[0], s, s, 5 + c)} "
                f"(from encode_targets). Got {tuple(y.shape)} instead."
            )

    def _terms(self, a, y, need_grad: bool):
        """(per-part batch sums as 0-d device arrays, gradient or None): the loss and its
        derivative side by side. Nothing leaves the device here."""
        self.check(a, y)
        xp = array_module(a)
        n, s, _, _ = a.shape
        nb = self.boxes_per_cell
        box = a[..., : 5 * nb].reshape(n, s, s, nb, 5)  # (N, S, S, B, 5)
        logits = a[..., 5 * nb :]  # (N, S, S, C)
        obj = y[..., 0]  # (N, S, S)
        truth = y[..., None, 1:5]  # (N, S, S, 1, 4)
        onehot = y[..., 5:]  # (N, S, S, C)

        # Responsible predictor: the highest IoU with the truth in its cell. IoU is
        # translation-invariant, so both boxes are placed in cell-offset/S units.
        iou = _center_iou(xp, box[..., :4], truth, s)  # (N, S, S, B)
        best = iou.argmax(axis=-1)  # (N, S, S), first on ties
        resp = (xp.arange(nb) == best[..., None]) * obj[..., None]  # (N, S, S, B)
        noobj = 1.0 - resp

        d = box[..., :4] - truth  # (N, S, S, B, 4)
        coord = self.lambda_coord * (resp[..., None] * d * d).sum()

        z = box[..., 4]  # (N, S, S, B) confidence logits
        p = _sigmoid(xp, z)
        t = iou if self.conf_target == "iou" else xp.ones_like(iou)
        lam = self.lambda_noobj
        if self.variant == "bce":
            softplus = xp.logaddexp(0.0, z)  # -ln(1 - p); -ln p = softplus - z
            conf_obj = (resp * (softplus - t * z)).sum()
            conf_noobj = lam * (noobj * softplus).sum()
            dz = resp * (p - t) + lam * noobj * p
        else:
            conf_obj = (resp * (p - t) ** 2).sum()
            conf_noobj = lam * (noobj * p * p).sum()
            dz = 2.0 * (resp * (p - t) + lam * noobj * p) * p * (1.0 - p)

        logp = _log_softmax(xp, logits)  # (N, S, S, C)
        prob = xp.exp(logp)
        if self.variant == "bce":
            cls = -(obj[..., None] * onehot * logp).sum()
            dlogits = obj[..., None] * (prob - onehot)
        else:
            e = prob - onehot
            cls = (obj[..., None] * e * e).sum()
            gp = 2.0 * obj[..., None] * e  # dL/dprob, then through the softmax Jacobian
            dlogits = prob * (gp - (gp * prob).sum(axis=-1, keepdims=True))

        parts = {"coord": coord, "conf_obj": conf_obj, "conf_noobj": conf_noobj, "class": cls}
        if not need_grad:
            return parts, None
        g = xp.empty_like(a)
        gbox = g[..., : 5 * nb].reshape(n, s, s, nb, 5)  # a view into g
        gbox[..., :4] = (2.0 * self.lambda_coord) * resp[..., None] * d
        gbox[..., 4] = dz
        g[..., 5 * nb :] = dlogits
        return parts, g

    def parts(self, a, y) -> dict:
        """Batch means of the four terms: coord, conf_obj, conf_noobj, class."""
        terms, _ = self._terms(a, y, need_grad=False)
        return {k: float(v) / max(len(a), 1) for k, v in terms.items()}

    def fn(self, a, y) -> float:
        """The loss: batch mean of the per-image sum over cells."""
        terms, _ = self._terms(a, y, need_grad=False)
        return float(sum(terms.values())) / max(len(a), 1)

    def grad(self, a, y):
        """d(per-image loss)/da, shape (N, S, S, 5B + C), on a's device (no host transfer)."""
        return self._terms(a, y, need_grad=True)[1]

    def loss_and_grad(self, a, y):
        """(``fn(a, y)``, ``grad(a, y)``) from one pass; the cost is a 0-d array on a's
        device (no host transfer: the training loop adds a step's costs up there)."""
        terms, g = self._terms(a, y, need_grad=True)
        return sum(terms.values()) / max(len(a), 1), g


def _center_iou(xp, pred, truth, s: int):
    """IoU of (x, y, sqrt_w, sqrt_h) boxes (cell offsets, image-relative sqrt sizes).

    pred (..., B, 4) and truth (..., 1, 4) -> (..., B). Centres are divided by S
    so both axes are in image units; widths are the squared parameters.
    """
    cx, cy = pred[..., 0] / s, pred[..., 1] / s
    w, h = pred[..., 2] ** 2, pred[..., 3] ** 2
    tx, ty = truth[..., 0] / s, truth[..., 1] / s
    tw, th = truth[..., 2] ** 2, truth[..., 3] ** 2
    iw = xp.minimum(cx + w / 2, tx + tw / 2) - xp.maximum(cx - w / 2, tx - tw / 2)
    ih = xp.minimum(cy + h / 2, ty + th / 2) - xp.maximum(cy - h / 2, ty - th / 2)
    inter = xp.maximum(iw, 0.0) * xp.maximum(ih, 0.0)
    union = w * h + tw * th - inter
    return inter / xp.maximum(union, _TINY)


def decode(
    a,
    *,
    boxes_per_cell: int,
    num_classes: int,
    image_size,
    score_threshold: float = 0.01,
    iou_threshold: float = 0.5,
    top_k: int | None = 100,
    class_agnostic: bool = False,
) -> dict:
    """Detections from a head output: boxes, scores and classes after NMS.

    Parameters
    ----------
    a : array, shape (N, S, S, 5B + C)
        Raw head output (NumPy or CuPy).
    boxes_per_cell, num_classes : int
        B and C.
    image_size : int or (int, int)
        (H, W) of the input images in pixels.
    score_threshold : float
        Drop detections scoring below this (score = sigmoid(conf) * class probability).
    iou_threshold : float
        NMS threshold: a kept box removes same-class boxes overlapping it by more.
    top_k : int or None
        At most this many detections per image (the highest scoring).
    class_agnostic : bool
        NMS across classes instead of per class.

    Returns
    -------
    dict of NumPy arrays, one row per kept detection, by image then decreasing score:
        ``image`` (K,) int64 index into the batch, ``boxes`` (K, 4) float64 xywh
        pixels clipped to the image, ``scores`` (K,) float64, ``classes`` (K,) int64.
    """
    nb = check_int("boxes_per_cell", boxes_per_cell, low=1)
    c = check_int("num_classes", num_classes, low=1)
    h, w = _image_size(image_size)
    check_number("score_threshold", score_threshold, low=0, high=1)
    xp = array_module(a)
    if a.ndim != 4 or a.shape[1] != a.shape[2] or a.shape[3] != 5 * nb + c:
        raise CvtoolError(
            f"The head output must be (N, S, S, 5B + C) = (N, S, S, {5 * nb + c}). "
            f"Got {tuple(a.shape)} instead."
        )
    n, s = a.shape[0], a.shape[1]
    box = a[..., : 5 * nb].reshape(n, s, s, nb, 5)  # (N, S, S, B, 5)
    prob = xp.exp(_log_softmax(xp, a[..., 5 * nb :]))  # (N, S, S, C)
    cls = prob.argmax(axis=-1)  # (N, S, S)
    score = _sigmoid(xp, box[..., 4]) * prob.max(axis=-1)[..., None]  # (N, S, S, B)
    grid = xp.arange(s, dtype=a.dtype)
    cx = (grid[None, None, :, None] + box[..., 0]) * (w / s)  # (N, S, S, B) pixels
    cy = (grid[None, :, None, None] + box[..., 1]) * (h / s)
    bw, bh = box[..., 2] ** 2 * w, box[..., 3] ** 2 * h
    x1, x2 = xp.clip(cx - bw / 2, 0, w), xp.clip(cx + bw / 2, 0, w)
    y1, y2 = xp.clip(cy - bh / 2, 0, h), xp.clip(cy + bh / 2, 0, h)
    xywh = xp.stack([x1, y1, x2 - x1, y2 - y1], axis=-1).reshape(-1, 4)  # (N*S*S*B, 4)
    score = score.reshape(-1)
    image = xp.broadcast_to(xp.arange(n)[:, None, None, None], (n, s, s, nb)).reshape(-1)
    classes = xp.broadcast_to(cls[..., None], (n, s, s, nb)).reshape(-1)
    keep = (score >= score_threshold) & (xywh[:, 2] > 0) & (xywh[:, 3] > 0)
    boxes_h = to_numpy(xywh[keep]).astype(np.float64)
    scores_h = to_numpy(score[keep]).astype(np.float64)
    image_h = to_numpy(image[keep]).astype(np.int64)
    classes_h = to_numpy(classes[keep]).astype(np.int64)
    kept = nms_per_image(image_h, boxes_h, scores_h, iou_threshold,
                         classes=None if class_agnostic else classes_h, top_k=top_k)  # fmt: skip
    # nms_per_image returns input order (by image); within an image, by decreasing score
    kept = kept[np.lexsort((-scores_h[kept], image_h[kept]))]
    return {
        "image": image_h[kept],
        "boxes": boxes_h[kept],
        "scores": scores_h[kept],
        "classes": classes_h[kept],
    }
