"""Device tests: training, optimisers, dropout, transforms, save/load, kNN, augmentation, NMS.

``device_xp`` runs each test on the strict CuPy-like CPU backend and on CuPy
where a GPU answers. Transfers are counted (not timed) on the strict backend:
a training step (MLP and CNN), a kNN query chunk and an augmentation batch
make no device-to-host transfer, and an epoch makes a stated number.

Dropout masks come from the device's generator (``backend.device_rng``):
the strict backend draws NumPy's numbers, CuPy draws its own (cuRAND), so
NumPy and CuPy agree only for networks without dropout; each backend is
deterministic for a given seed, which is what these tests check.
"""

from __future__ import annotations

import numpy as np
import pytest

from cvtool import backend
from cvtool.augment import RandomAffine, random_affine_batch
from cvtool.boxes import nms, nms_per_image
from cvtool.knn import search as knn_search
from cvtool.nn import conv as conv_mod
from cvtool.nn.cnn import cnn_model, mlp_model
from cvtool.nn.fit import Callback
from cvtool.nn.model import Sequential
from cvtool.nn.optim import FUSED, get_optimizer
from cvtool.testing import strict

SMALL_CNN = (
    "conv:4x3:relu, pool:2, conv:6x3:relu, maxpool:2, flatten, dense:16:relu, dense:10:softmax"
)


def is_strict(xp) -> bool:
    return xp is strict.xp


def counting(xp):
    """strict.counting() on the strict backend; a dummy that counts nothing elsewhere."""
    import contextlib

    return strict.counting() if is_strict(xp) else contextlib.nullcontext(strict.Counts())


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (65, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 65)
    return x, y


def weights(model) -> list[np.ndarray]:
    return [backend.to_numpy(p) for layer in model.param_layers for p in layer.params.values()]


class StepCounter(Callback):
    """Snapshots of the transfer counts after every step (fit reports each step when few)."""

    def __init__(self, counts):
        self.counts, self.after = counts, []

    def on_progress(self, epoch, done, steps):
        self.after.append((self.counts.downloads, self.counts.uploads))


def per_step(cb: StepCounter) -> list[tuple[int, int]]:
    a = cb.after
    return [(a[i][0] - a[i - 1][0], a[i][1] - a[i - 1][1]) for i in range(1, len(a))]


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_fit_agrees_with_numpy(device_xp, data, kind, optimizer):
    """Same seed, float64: the device run follows the NumPy run to rounding (no dropout)."""
    x, y = data
    runs = []
    for xp in (np, device_xp):
        if kind == "mlp":
            model = mlp_model("784,20,10", 784).build(xp, "float64", seed=3)
        else:
            model = cnn_model(SMALL_CNN, (28, 28)).build(xp, "float64", seed=3)
        eta = {"sgd": 0.5, "momentum": 0.05, "adam": 0.002}[optimizer]
        hist = model.fit(x, y, epochs=2, batch_size=10, loss="cross-entropy" if kind == "mlp"
                         else "log-likelihood", optimizer=get_optimizer(optimizer, eta, lmbda=0.3),
                         validation=(x[:20], y[:20]))  # fmt: skip
        runs.append((weights(model), hist.records))
    for a, b in zip(runs[0][0], runs[1][0], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    for ra, rb in zip(runs[0][1], runs[1][1], strict=True):
        assert rb["val_cost"] == pytest.approx(ra["val_cost"], rel=1e-9)
        assert rb["val_accuracy"] == ra["val_accuracy"]


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_a_training_step_makes_no_transfer(device_xp, data, kind):
    """Every step of an epoch (the last, smaller one too): no download, no upload."""
    x, y = data
    if kind == "mlp":
        model = mlp_model("784,20,10", 784).build(device_xp, seed=0)
        loss = "cross-entropy"
    else:
        model = cnn_model(SMALL_CNN + "", (28, 28)).build(device_xp, seed=0)
        loss = "log-likelihood"
    with counting(device_xp) as c:
        cb = StepCounter(c)
        model.fit(x, y, epochs=2, batch_size=10, loss=loss, callback=cb,
                  optimizer=get_optimizer("adam", 0.001))  # fmt: skip
    if not is_strict(device_xp):
        return
    steps = per_step(cb)
    assert len(steps) == 2 * 7 - 1
    within_epoch = [s for i, s in enumerate(steps) if i != 6]  # step 7 -> 8 spans the epoch end
    assert all(s == (0, 0) for s in within_epoch), c.report()


def test_an_epoch_makes_a_bounded_number_of_downloads(device_xp, data):
    """Per epoch: the running train cost and accuracy (2), one finite-check per parameter
    array (P), and per validation chunk of up to 2000 examples its cost and accuracy (2)."""
    if not is_strict(device_xp):
        pytest.skip("transfers are counted on the strict backend")
    x, y = data
    for validation, extra in ((None, 0), ((x[:20], y[:20]), 2)):
        model = cnn_model(SMALL_CNN, (28, 28)).build(device_xp, seed=0)
        p = sum(len(layer.params) for layer in model.param_layers)
        monitor = ("train-cost", "train-accuracy") + (("val-cost", "val-accuracy") if extra else ())
        for epochs in (1, 3):
            with strict.counting() as c:
                model.fit(x, y, epochs=epochs, batch_size=10, loss="log-likelihood",
                          validation=validation, monitor=monitor)  # fmt: skip
            # + the labels and inputs checked once per fit (to_float / one_hot are uploads)
            assert c.downloads == epochs * (2 + p + extra), c.report()


def test_dropout_trains_on_the_device_deterministically(device_xp, data):
    x, y = data
    spec = "input:784, dense:30:relu, dropout:0.5, dense:10:softmax"
    runs = []
    for _ in range(2):
        model = mlp_model(spec, 784).build(device_xp, seed=1)
        model.fit(x, y, epochs=2, batch_size=10, loss="log-likelihood")
        runs.append(weights(model))
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)
    drop = model.layers[[layer.kind for layer in model.layers].index("dropout")]
    out = backend.to_numpy(drop.forward(device_xp.ones((200, 30), dtype=device_xp.float32), True))
    assert set(np.unique(out)) <= {0.0, 2.0}
    assert 0.4 < (out == 0).mean() < 0.6  # rate 0.5
    assert (backend.to_numpy(drop.forward(device_xp.ones((2, 30)), False)) == 1).all()


def test_fit_transform_runs_on_the_device_without_downloads(device_xp, data):
    x, y = data
    model = cnn_model(SMALL_CNN, (28, 28)).build(device_xp, seed=0)
    aug = RandomAffine(np.random.default_rng(0), rotation=10, shift=2, hflip=0.5)
    seen = []

    def transform(xb):
        assert backend.array_module(xb) is device_xp and xb.shape[1:] == (28, 28, 1)
        seen.append(xb.shape[0])
        return aug(xb)

    with counting(device_xp) as c:
        cb = StepCounter(c)
        model.fit(x, y, epochs=1, batch_size=10, loss="log-likelihood", transform=transform,
                  callback=cb)  # fmt: skip
    assert seen == [10] * 6 + [5]
    if is_strict(device_xp):  # one upload per batch: its (m, 2, 3) matrices
        assert per_step(cb) == [(0, 1)] * 6, c.report()


def test_save_and_load_a_model_trained_on_the_device(device_xp, data, tmp_path):
    x, y = data
    model = cnn_model(SMALL_CNN, (28, 28)).build(device_xp, seed=0)
    model.fit(x, y, epochs=1, batch_size=10, loss="log-likelihood",
              optimizer=get_optimizer("momentum", 0.05))  # fmt: skip
    proba = backend.to_numpy(model.predict_proba(x))
    path = model.save(tmp_path / "m.npz")
    for name in ("numpy", backend.backend_name(device_xp)):
        loaded = Sequential.load(path, backend_name=name)
        assert backend.backend_name(loaded.xp) == name
        np.testing.assert_allclose(backend.to_numpy(loaded.predict_proba(x)), proba, rtol=1e-5,
                                   atol=1e-6)  # fmt: skip
        for a, b in zip(weights(loaded), weights(model), strict=True):
            np.testing.assert_array_equal(a, b)
    ev = Sequential.load(path, backend_name=backend.backend_name(device_xp)).evaluate(x, y)
    assert ev["accuracy"] == model.evaluate(x, y)["accuracy"]


# ----------------------------------------------------------------------------- optimisers


@pytest.mark.parametrize("name", ["momentum", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_update_is_one_kernel_per_parameter_and_matches_numpy(device_xp, name, dtype):
    rng = np.random.default_rng(2)
    shapes = [(5, 3), (3,), (2, 2, 4)]
    ps = [rng.standard_normal(s).astype(dtype) for s in shapes]
    gs = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(3)]
    out = []
    for xp in (np, device_xp):
        params = [xp.asarray(p.copy()) for p in ps]
        grads = [xp.zeros_like(p) for p in params]
        opt = get_optimizer(name, 0.01, lmbda=2.0)
        opt.bind([(p, g, i != 1) for i, (p, g) in enumerate(zip(params, grads, strict=True))], 7)
        for step in gs:
            for g, v in zip(grads, step, strict=True):
                g[...] = xp.asarray(v)
            with counting(xp) as c:
                opt.step()
            if is_strict(xp):
                assert c.launches == len(params) and c.downloads == 0, c.report()
        out.append([backend.to_numpy(p) for p in params])
    tol = 1e-6 if dtype == "float32" else 1e-14
    for a, b in zip(*out, strict=True):
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol)
    assert set(FUSED) == {"momentum", "adam"}


# ----------------------------------------------------------------------------- conv workspace


def test_device_conv_workspace_is_chunked_and_exact(device_xp, monkeypatch):
    rng = np.random.default_rng(4)
    x = device_xp.asarray(rng.standard_normal((9, 10, 10, 3)))
    dout = device_xp.asarray(rng.standard_normal((9, 8, 8, 5)))
    results = []
    for chunk in (2**30, 3 * 8 * 8 * 27 * 8):  # whole batch, then 3 images per product
        monkeypatch.setattr(conv_mod, "DEVICE_CHUNK_BYTES", chunk)
        layer = conv_mod.Conv2D(5, 3)
        layer.build((10, 10, 3), device_xp, np.dtype("float64"), np.random.default_rng(0))
        nc, chunks, workers = layer._plan(device_xp, 9, 8 * 8 * 27 * 8)
        assert workers == 1 and nc == min(9, chunk // (8 * 8 * 27 * 8))
        y = layer.forward(x, True)
        dx = layer.backward(dout)
        results.append([backend.to_numpy(a) for a in (y, dx, layer.grads["W"], layer.grads["b"])])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_keras_course_eval_batch_workspace_is_bounded(device_xp):
    layer = conv_mod.Conv2D(32, 3)
    image_bytes = 24 * 24 * (3 * 3 * 64) * 4  # keras-course's 2nd conv, float32
    assert 2000 * image_bytes > 2.6e9
    nc, chunks, workers = layer._plan(device_xp, 2000, image_bytes)
    assert nc * image_bytes <= conv_mod.DEVICE_CHUNK_BYTES and sum(m for _, m in chunks) == 2000


# ----------------------------------------------------------------------------- kNN


@pytest.mark.parametrize("metric", ["l1", "l2", "cosine"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_knn_on_the_device_agrees_with_ties_and_chunks(device_xp, metric, dtype):
    rng = np.random.default_rng(7)
    train = rng.integers(0, 3, (500, 16)).astype(dtype)  # values 0..2: many exact ties
    test = rng.integers(0, 3, (70, 16)).astype(dtype)
    rd, ri = knn_search.kneighbors(train, test, 7, metric)
    for memory in (1000, 0.05):  # one chunk; many row chunks and column blocks
        with counting(device_xp) as c:
            d, i = knn_search.kneighbors(device_xp.asarray(train), device_xp.asarray(test), 7,
                                         metric, memory_mb=memory)  # fmt: skip
        assert backend.array_module(i) is device_xp
        np.testing.assert_array_equal(backend.to_numpy(i), ri)
        np.testing.assert_allclose(backend.to_numpy(d), rd, rtol=1e-12, atol=1e-12)
        if is_strict(device_xp):
            # None per chunk: a finite-check per float input, and the exact-uint8 L2 plan
            # checks its rows once per search, however many chunks there are.
            expect = (2 if dtype != np.uint8 else 0) + ((metric, dtype) == ("l2", np.uint8))
            assert c.downloads == expect, c.report()


def test_knn_exact_l2_fallback_rows_on_the_device(device_xp):
    """Far neighbours (squared distances >= 2**24) redo their rows in float64, once."""
    rng = np.random.default_rng(8)
    train = rng.integers(0, 256, (300, 1024)).astype(np.uint8)
    test = np.vstack([np.zeros((3, 1024), np.uint8), train[:2]])
    rd, ri = knn_search.kneighbors(train, test, 4, "l2")
    d, i = knn_search.kneighbors(train, test, 4, "l2", xp=device_xp, memory_mb=0.5)
    np.testing.assert_array_equal(backend.to_numpy(i), ri)
    np.testing.assert_allclose(backend.to_numpy(d), rd, rtol=1e-12)


# ----------------------------------------------------------------------------- augmentation


def test_an_augmentation_batch_makes_no_download(device_xp):
    rng = np.random.default_rng(0)
    x = device_xp.asarray(rng.integers(0, 256, (16, 28, 28), dtype=np.uint8))
    ref = random_affine_batch(backend.to_numpy(x), np.random.default_rng(5), rotation=15,
                              shift=3, zoom=0.1, hflip=0.5)  # fmt: skip
    aug = RandomAffine(np.random.default_rng(5), rotation=15, shift=3, zoom=0.1, hflip=0.5)
    with counting(device_xp) as c:
        out = aug(x)
    assert backend.array_module(out) is device_xp
    # CuPy's matrix products may round coordinates differently: one grey level at most.
    diff = np.abs(backend.to_numpy(out).astype(int) - ref.astype(int))
    assert diff.max() <= (0 if is_strict(device_xp) else 1)
    if is_strict(device_xp):
        assert (c.downloads, c.uploads) == (0, 1), c.report()


# ----------------------------------------------------------------------------- NMS


@pytest.mark.parametrize("per_image", [False, True])
def test_nms_on_the_device_agrees_and_copies_once(device_xp, per_image):
    rng = np.random.default_rng(9)
    for _ in range(20):
        n = int(rng.integers(0, 80))
        b = np.c_[rng.uniform(0, 60, (n, 2)), rng.uniform(1, 30, (n, 2))]
        s = rng.integers(0, 6, n).astype(float)  # ties in score
        c, img = rng.integers(0, 3, n), rng.integers(0, 4, n)
        for kw in ({}, {"classes": c}, {"classes": c, "score_threshold": 2.0, "top_k": 4}):
            if per_image:
                ref = nms_per_image(img, b, s, 0.3, **kw)
                with counting(device_xp) as cnt:
                    got = nms_per_image(img, device_xp.asarray(b), s, 0.3, **kw)
            else:
                ref = nms(b, s, 0.3, **kw)
                with counting(device_xp) as cnt:
                    got = nms(device_xp.asarray(b), device_xp.asarray(s), 0.3, **kw)
            np.testing.assert_array_equal(got, ref)
            if is_strict(device_xp):
                assert cnt.downloads == 2, cnt.report()  # order and kept mask, once per call


def test_nms_on_the_device_refuses_nan_scores(device_xp):
    from cvtool.errors import CvtoolError

    b = device_xp.asarray(np.array([[0.0, 0, 5, 5], [1, 1, 5, 5]]))
    with pytest.raises(CvtoolError, match="finite"):
        nms(b, device_xp.asarray(np.array([1.0, np.nan])))
    with pytest.raises(CvtoolError, match="finite"):
        nms_per_image(np.array([0, 0]), b, np.array([np.nan, 1.0]))


@pytest.mark.parametrize("kind", ["segmentation", "detection"])
def test_a_dense_task_step_makes_no_transfer(device_xp, kind):
    # tasks that cannot keep their outputs for a running average (segmentation, detection)
    # add up each step's cost as a 0-d device array: one download an epoch, none a step
    from cvtool.detect.task import Detection
    from cvtool.detect.yolo import YoloLoss
    from cvtool.segment.task import Segmentation

    if not is_strict(device_xp):
        pytest.xfail("transfers are counted on the strict backend")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 16, 16), dtype=np.uint8)
    if kind == "segmentation":
        y, task = rng.integers(0, 3, (40, 16, 16)), Segmentation(3)
        spec = "conv:4x3:relu:p=same, tap:a, pool:2, conv:8x3:relu:p=same, upsample:2, "
        spec += "concat:a, conv:3x1"
    else:  # one 8 x 8 box (xywh) of class 1 per image
        y = [(np.array([[*rng.integers(0, 8, 2), 8.0, 8.0]]), np.array([1])) for _ in range(40)]
        task = Detection(YoloLoss(2, 1, 3), (16, 16), ("a", "b", "c"))
        spec = "conv:4x3:p=same, bn, relu, pool:4, conv:8x3:p=same, bn, relu, pool:2, conv:8x1"
    model = cnn_model(spec, (16, 16)).build(device_xp, seed=0)
    with strict.counting() as c:
        cb = StepCounter(c)
        model.fit(x, y, epochs=1, batch_size=10, loss=task, callback=cb,
                  monitor=("train-cost",))  # fmt: skip
    assert all(s == (0, 0) for s in per_step(cb)), c.report()
