"""Grid detection as a training task: YOLO's loss, scored by COCO mAP@0.5.

Labels are, per image, the ground-truth boxes (K_i, 4) xywh in pixels and
their classes (K_i,) 0..C-1, given to ``fit``/``train`` as a list of
``(boxes, classes)`` pairs. :class:`Detection` encodes them into per-cell
targets (:func:`cvtool.detect.yolo.encode_targets`) for the loss, and scores a
network the way ``cvtool iou map`` does: decode the head to boxes, per-class
NMS, COCO evaluation against the original boxes (not the encoded ones: a
cell keeps one object, and the boxes it drops count as missed). Validation
watches mAP@0.5 (``map50``); the test report adds COCO's mAP@[.5:.95] and
the AP of each class. Category ids are class + 1, as in the canvas sets'
COCO files.
"""

from __future__ import annotations

import numpy as np

from cvtool.boxes.coco import coco_evaluate
from cvtool.boxes.io import detections_from_coco, ground_truth_from_coco
from cvtool.detect.yolo import YoloLoss, decode, encode_targets
from cvtool.errors import CvtoolError
from cvtool.nn.losses import l2_penalty

EVAL_BATCH = 256


def coco_ground_truth(labels, image_size, class_names) -> dict:
    """A COCO ground-truth document for (boxes, classes) pairs; image ids 1..N."""
    h, w = image_size
    anns = []
    for i, (boxes, classes) in enumerate(labels):
        for box, c in zip(
            np.asarray(boxes, float).reshape(-1, 4), np.asarray(classes), strict=True
        ):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(c) + 1,
                         "bbox": [float(v) for v in box], "area": float(box[2] * box[3]),
                         "iscrowd": 0})  # fmt: skip
    return {
        "images": [{"id": i + 1, "width": w, "height": h} for i in range(len(labels))],
        "annotations": anns,
        "categories": [{"id": k + 1, "name": n} for k, n in enumerate(class_names)],
    }


def coco_results(found: dict, image_ids=None) -> list[dict]:
    """COCO results (image_id, category_id = class + 1, bbox, score) from ``decode``'s dict."""
    ids = np.arange(1, 1 + (found["image"].max() + 1 if len(found["image"]) else 0))
    ids = ids if image_ids is None else np.asarray(image_ids)
    return [
        {"image_id": int(ids[i]), "category_id": int(c) + 1,
         "bbox": [round(float(v), 3) for v in b], "score": round(float(s), 5)}
        for i, b, s, c in zip(found["image"], found["boxes"], found["scores"], found["classes"],
                              strict=True)
    ]  # fmt: skip


class Detection:
    """Boxes per image against a grid head (N, S, S, 5B + C); validation watches mAP@0.5.

    Parameters
    ----------
    loss : the YoloLoss (grid, boxes per cell, classes, variant, lambdas).
    image_size : (H, W) of the input images in pixels.
    class_names : C names.
    score_threshold, iou_threshold : decoding for the scores, as ``cvtool detect``'s
        defaults, so a trainer's test report equals ``iou map`` on ``detect``'s output.
    """

    score = "map50"
    running = False
    fused = None

    def __init__(self, loss: YoloLoss, image_size, class_names, *, score_threshold=0.05,
                 iou_threshold=0.5):  # fmt: skip
        self.loss, self.name = loss, loss.name
        self.image_size = tuple(image_size)
        self.class_names = tuple(class_names)
        if len(self.class_names) != loss.num_classes:
            raise CvtoolError(
                f"The detector has {loss.num_classes} classes but the data names "
                f"{len(self.class_names)}."
            )
        self.score_threshold, self.iou_threshold = score_threshold, iou_threshold

    def config(self) -> dict:
        return {"cost": self.name, "task": "detection", **self.loss.config(),
                "image_size": list(self.image_size), "class_names": list(self.class_names)}  # fmt: skip

    def targets(self, model, y):
        boxes, classes = [b for b, _ in y], [c for _, c in y]
        return encode_targets(boxes, classes, grid=self.loss.grid,
                              num_classes=self.loss.num_classes, image_size=self.image_size,
                              dtype=model.dtype, xp=model.xp)  # fmt: skip

    def fn(self, a, Y) -> float:
        return self.loss.fn(a, Y)

    def grad(self, a, Y):
        return self.loss.grad(a, Y)

    def loss_and_grad(self, a, Y):
        """(fn(a, Y), grad(a, Y)) from one pass of the loss (the training loop's step cost)."""
        return self.loss.loss_and_grad(a, Y)

    def check(self, model, dataset) -> None:
        if tuple(model.output_shape) != self.loss.head_shape:
            raise CvtoolError(
                f"A grid detector must output {self.loss.head_shape} (S x S x (5B + C)); the "
                f"network outputs {tuple(model.output_shape)}. End it at the grid's size with "
                f"conv:{self.loss.head_shape[2]}x1."
            )

    def detect(self, model, x, Y=None, batch: int = EVAL_BATCH):
        """(decoded detections of prepared inputs x, mean cost against targets Y or None),
        from one forward pass."""
        parts, cost = [], 0.0
        for i in range(0, len(x), batch):
            a = model.forward(x[i : i + batch])
            if Y is not None:
                cost += self.loss.fn(a, Y[i : i + batch]) * len(a)
            found = decode(a, boxes_per_cell=self.loss.boxes_per_cell,
                           num_classes=self.loss.num_classes, image_size=self.image_size,
                           score_threshold=self.score_threshold,
                           iou_threshold=self.iou_threshold)  # fmt: skip
            found["image"] = found["image"] + i
            parts.append(found)
        found = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {
            "image": np.zeros(0, np.int64), "boxes": np.zeros((0, 4)),
            "scores": np.zeros(0), "classes": np.zeros(0, np.int64)}  # fmt: skip
        return found, (None if Y is None else cost / max(len(x), 1))

    def scores(self, model, x, y, Y=None) -> dict:
        """COCO evaluation of the network's detections on prepared x against labels y
        (and the mean cost against targets Y, from the same forward pass)."""
        gt = ground_truth_from_coco(coco_ground_truth(y, self.image_size, self.class_names))
        found, cost = self.detect(model, x, Y)
        ev = coco_evaluate(gt, detections_from_coco(coco_results(found), gt))
        prec = ev["precision"][:, :, :, 0, -1]  # (T, R, K): all areas, most detections
        per_class = []
        for k in range(prec.shape[2]):
            p = prec[:, :, k]
            per_class.append(float(p[p > -1].mean()) if (p > -1).any() else None)
        return {"map": float(ev["stats"][0]), "map50": float(ev["stats"][1]),
                "per_class_ap": per_class, "detections": len(found["scores"]), "cost": cost}  # fmt: skip

    def measure(self, model, x, y, Y, lmbda: float, n_train: int) -> dict:
        got = self.scores(model, x, y, Y)
        got["cost"] += l2_penalty(model._weights(), lmbda, n_train)
        return got

    def evaluate(self, model, x, y) -> dict:
        x = model.prepare(x)
        got = self.scores(model, x, y, self.targets(model, y))
        got["n"] = len(x)
        return got


def labels_of(canvases) -> list:
    """(boxes, classes) pairs of a CanvasSet, the labels ``Detection`` takes."""
    return list(zip(canvases.boxes, canvases.labels, strict=True))


def detector_of(model) -> Detection:
    """The Detection task a saved detector was trained with (its file's metadata)."""
    cfg = model.meta.get("training", {})
    if model.meta.get("task") != "detection" or cfg.get("loss") != "yolo":
        kind = model.meta.get("task", "classification")
        raise CvtoolError(
            f"This model is a {kind} model, not a detector; 'cvtool detect' runs models from "
            "'cvtool train-detector' (use 'cvtool predict' for classifiers)."
        )
    loss = YoloLoss(cfg["grid"], cfg["boxes_per_cell"], cfg["num_classes"],
                    variant=cfg["variant"], lambda_coord=cfg["lambda_coord"],
                    lambda_noobj=cfg["lambda_noobj"], conf_target=cfg["conf_target"])  # fmt: skip
    return Detection(loss, cfg["image_size"], cfg["class_names"])


def detect(model, images, *, image_ids=None, score_threshold: float = 0.05,
           iou_threshold: float = 0.5, top_k: int | None = 100) -> list[dict]:  # fmt: skip
    """COCO results of a trained detector on images (what ``cvtool detect`` writes).

    Parameters
    ----------
    model : a detector (``train_detector``'s model, or ``Sequential.load`` of its file).
    images : (N, H, W, C) images (uint8 are scaled as in training).
    image_ids : COCO image ids (default 1..N).
    score_threshold, iou_threshold, top_k : decoding: keep detections scoring
        at least this, per-class NMS at this IoU, at most top_k per image.
    """
    from cvtool.errors import check_number

    task = detector_of(model)
    task.score_threshold = check_number("score-threshold", score_threshold, low=0, high=1)
    task.iou_threshold = check_number("iou", iou_threshold, low=0, high=1)
    x = model.prepare(images)
    found, _ = task.detect(model, x)
    if top_k is not None:
        from cvtool.errors import check_int

        check_int("top-k", top_k, low=1)
        rank = np.zeros(len(found["image"]), np.int64)
        for i in np.unique(found["image"]):  # decode sorts by image, then by score
            idx = np.flatnonzero(found["image"] == i)
            rank[idx] = np.arange(len(idx))
        found = {k: v[rank < top_k] for k, v in found.items()}
    ids = np.arange(1, len(x) + 1) if image_ids is None else np.asarray(image_ids)
    return coco_results(found, ids)
