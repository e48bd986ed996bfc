"""The network engine: update rules, training behaviour, files, cross-checks with PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cvtool.errors import CvtoolError
from cvtool.nn import layers as L
from cvtool.nn.activations import get_activation
from cvtool.nn.model import Callback, Sequential
from cvtool.nn.optim import SGD, Adam, Momentum, get_optimizer
from cvtool.nn.spec import layers_from_sizes, parse_spec


def small_model(spec="input:6, dense:5:sigmoid, dense:3:sigmoid", seed=0, dtype="float64", xp=np):
    return Sequential.from_spec(parse_spec(spec)).build(xp, dtype, seed=seed)


def toy_data(n=60, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * 2
    y = rng.integers(0, k, n)
    x = centers[y] + rng.standard_normal((n, d)) * 0.5
    return x, y


# ---------------------------------------------------------------- update rules
def bound(opt, shape=(3, 2), n=100, seed=0):
    rng = np.random.default_rng(seed)
    W, b = rng.standard_normal(shape), rng.standard_normal(shape[1])
    gW, gb = rng.standard_normal(shape), rng.standard_normal(shape[1])
    opt.bind([(W, gW, True), (b, gb, False)], n)
    return W, b, gW, gb


@pytest.mark.parametrize("prescaled", [False, True])
def test_sgd_is_nielsens_l2_update(prescaled):
    eta, lmbda, n = 0.5, 5.0, 100
    opt = SGD(eta, lmbda)
    W, b, gW, gb = bound(opt, n=n)
    W0, b0 = W.copy(), b.copy()
    if prescaled:
        gW *= eta
        gb *= eta
        opt.step(prescaled=True)
        gW /= eta
        gb /= eta
    else:
        opt.step()
    # w -> (1 - eta lmbda / n) w - eta * mean gradient; biases are not decayed
    assert np.allclose(W, (1 - eta * lmbda / n) * W0 - eta * gW, rtol=0, atol=1e-15)
    assert np.allclose(b, b0 - eta * gb, rtol=0, atol=1e-15)


def test_momentum_update_two_steps():
    eta, lmbda, mu, n = 0.1, 2.0, 0.9, 50
    opt = Momentum(eta, lmbda, momentum=mu)
    W, b, gW, gb = bound(opt, n=n)
    W0, v = W.copy(), np.zeros_like(W)
    for _ in range(2):
        v = mu * v - eta * (gW + lmbda / n * W0)
        W0 = W0 + v
        opt.step()
    assert np.allclose(W, W0, atol=1e-14)


def test_adam_matches_torch():
    torch = pytest.importorskip("torch")
    eta, lmbda, n = 0.01, 3.0, 30
    opt = Adam(eta, lmbda)
    W, b, gW, gb = bound(opt, n=n)
    tW = torch.tensor(W.copy(), requires_grad=True)
    tb = torch.tensor(b.copy(), requires_grad=True)
    topt = torch.optim.Adam(
        [{"params": [tW], "weight_decay": lmbda / n}, {"params": [tb], "weight_decay": 0.0}],
        lr=eta,
    )
    rng = np.random.default_rng(5)
    for _ in range(4):
        gW[...] = rng.standard_normal(gW.shape)
        gb[...] = rng.standard_normal(gb.shape)
        tW.grad, tb.grad = torch.tensor(gW.copy()), torch.tensor(gb.copy())
        topt.step()
        opt.step()
    assert np.allclose(W, tW.detach().numpy(), atol=1e-12)
    assert np.allclose(b, tb.detach().numpy(), atol=1e-12)


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda: SGD(0.0), "eta"),
        (lambda: SGD(-1.0), "eta"),
        (lambda: SGD(float("nan")), "eta"),
        (lambda: SGD(0.5, -0.1), "lmbda"),
        (lambda: Momentum(0.5, momentum=1.0), "momentum"),
        (lambda: Adam(0.001, beta2=1.5), "beta2"),
        (lambda: get_optimizer("rmsprop", 0.1), "optimizer"),
    ],
)
def test_optimizers_reject_bad_hyperparameters(make, word):
    with pytest.raises(CvtoolError, match=word):
        make()


# ---------------------------------------------------------------- layers and shapes
@pytest.mark.parametrize(
    "layer, in_shape",
    [(L.Dense(7), (5,)), (L.Dense(3, bias=False), (4,)), (L.Flatten(), (4, 3, 2)),
     (L.Activation("softmax"), (6,)), (L.Dropout(0.5), (8,))],
)  # fmt: skip
def test_forward_shape_and_param_count_agree_with_shapes(xp, layer, in_shape):
    rng = np.random.default_rng(0)
    layer.build(in_shape, xp, np.dtype("float32"), rng)
    out = layer.forward(xp.asarray(rng.standard_normal((2, *in_shape)), dtype=xp.float32), True)
    assert tuple(out.shape[1:]) == layer.output_shape(in_shape)
    assert sum(layer.param_count(in_shape)) == sum(int(p.size) for p in layer.params.values())


def test_dense_rejects_images():
    with pytest.raises(CvtoolError, match="flatten"):
        L.Dense(3).output_shape((4, 4, 1))


def test_dense_after_image_is_flattened_implicitly():
    model = Sequential.from_spec(parse_spec("input:4x4, dense:3:softmax")).build()
    assert [layer.kind for layer in model.layers] == ["flatten", "dense", "activation"]
    assert model.predict_proba(np.zeros((2, 4, 4), np.uint8)).shape == (2, 3)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, (3, 5), elements=st.floats(-50, 50)))
def test_softmax_rows_sum_to_one_and_sigmoid_in_range(z):
    s = get_activation("softmax").forward(z)
    assert np.allclose(s.sum(axis=1), 1.0) and (s >= 0).all()
    sig = get_activation("sigmoid").forward(z)
    assert ((sig >= 0) & (sig <= 1)).all()
    assert np.allclose(sig, 1 / (1 + np.exp(-z)), atol=1e-12)


def test_init_schemes_have_the_documented_spread():
    for init, std in (("default", 1 / np.sqrt(400)), ("large", 1.0), ("he", np.sqrt(2 / 400))):
        layer = L.Dense(300, init=init)
        layer.build((400,), np, np.dtype("float64"), np.random.default_rng(0))
        assert abs(layer.params["W"].std() / std - 1) < 0.02, init
    layer = L.Dense(300, init="glorot")
    layer.build((400,), np, np.dtype("float64"), np.random.default_rng(0))
    assert np.abs(layer.params["W"]).max() <= np.sqrt(6 / 700)
    assert not layer.params["b"].any()


# ---------------------------------------------------------------- training behaviour
def test_training_learns_and_is_reproducible():
    x, y = toy_data()
    weights = []
    for _ in range(2):
        model = small_model(seed=4)
        hist = model.fit(x, y, epochs=5, batch_size=10, optimizer=SGD(1.0), seed=9)
        weights.append(model.layers[0].params["W"].copy())
    assert np.array_equal(weights[0], weights[1])
    assert hist.records[-1]["train_accuracy"] > 0.9
    assert hist.records[-1]["train_cost"] < hist.records[0]["train_cost"]
    other = small_model(seed=5)
    other.fit(x, y, epochs=5, batch_size=10, optimizer=SGD(1.0), seed=9)
    assert not np.array_equal(other.layers[0].params["W"], weights[0])


@pytest.mark.parametrize("m", [4, 5])  # 5: the last mini-batch is smaller (12 = 5 + 5 + 2)
def test_sgd_training_matches_torch(m):
    """One epoch of [6, 5, 3] sigmoid/cross-entropy with L2 equals PyTorch's, step by step."""
    torch = pytest.importorskip("torch")
    x, y = toy_data(n=12)
    model = small_model(seed=1)
    eta, lmbda = 0.7, 2.0
    tl = [torch.nn.Linear(6, 5).double(), torch.nn.Linear(5, 3).double()]
    for t, layer in zip(tl, model.param_layers, strict=True):
        t.weight.data = torch.tensor(layer.params["W"].T.copy())
        t.bias.data = torch.tensor(layer.params["b"].copy())
    topt = torch.optim.SGD(
        [{"params": [t.weight for t in tl], "weight_decay": lmbda / len(x)},
         {"params": [t.bias for t in tl], "weight_decay": 0.0}], lr=eta,
    )  # fmt: skip
    model.fit(x, y, epochs=1, batch_size=m, optimizer=SGD(eta), lmbda=lmbda, shuffle=False,
              monitor=())  # fmt: skip
    X, Y = torch.tensor(x), torch.nn.functional.one_hot(torch.tensor(y), 3).double()
    for i in range(0, len(x), m):
        a = torch.sigmoid(tl[1](torch.sigmoid(tl[0](X[i : i + m]))))
        loss = torch.nn.functional.binary_cross_entropy(a, Y[i : i + m], reduction="sum") / len(a)
        topt.zero_grad()
        loss.backward()
        topt.step()
    for t, layer in zip(tl, model.param_layers, strict=True):
        assert np.allclose(layer.params["W"], t.weight.detach().numpy().T, atol=1e-10)
        assert np.allclose(layer.params["b"], t.bias.detach().numpy(), atol=1e-10)


def test_inference_keeps_no_references_to_activations():
    model = small_model()
    x = np.random.default_rng(0).standard_normal((4, 6))
    trained = model.forward(x, True).copy()
    assert model.layers[0].x is not None and model.layers[1].a is not None
    out = model.forward(x)
    np.testing.assert_array_equal(out, trained)  # same numbers either way
    # What only backward needs is dropped, so no intermediate outlives the pass.
    assert model.layers[0].x is None and model.layers[1].z is None and model.layers[1].a is None


def test_fit_transform_sees_training_batches_only():
    x, y = toy_data(n=65)
    xv, yv = toy_data(n=20, seed=1)
    seen = []

    def record(xb):
        seen.append(xb.copy())
        return xb

    model = small_model(seed=4)
    model.fit(x, y, epochs=2, batch_size=10, optimizer=SGD(1.0), seed=9,
              validation=(xv, yv), transform=record)  # fmt: skip
    # 7 mini-batches per epoch (the last one of 5), gathered rows of x, nothing else.
    assert [len(b) for b in seen] == [10] * 6 + [5] + [10] * 6 + [5]
    assert np.array_equal(np.sort(np.concatenate(seen[:7]), axis=0), np.sort(x, axis=0))
    # An identity transform gives exactly the run without one; a real one changes training.
    weights = []
    for transform in (None, lambda xb: xb, lambda xb: -xb):
        model = small_model(seed=4)
        model.fit(x, y, epochs=2, batch_size=10, optimizer=SGD(1.0), seed=9, transform=transform)
        weights.append(model.layers[0].params["W"].copy())
    assert np.array_equal(weights[0], weights[1])
    assert not np.allclose(weights[0], weights[2])
    with pytest.raises(CvtoolError, match="transform"):
        small_model().fit(x, y, epochs=1, transform="flip")


def test_early_stop_restores_best_epoch(monkeypatch):
    x, y = toy_data()
    model = small_model()
    script = iter([0.5, 0.8, 0.6, 0.7, 0.75, 0.9])
    real = model._measure

    def fake(xs, Ys, *args):
        cost, _ = real(xs, Ys, *args)
        return cost, next(script) if len(xs) == 20 else 0.0

    monkeypatch.setattr(model, "_measure", fake)
    snaps = {}

    class Snap(Callback):
        def on_epoch_end(self, record, m, improved):
            snaps[record["epoch"]] = m.layers[0].params["W"].copy()

    hist = model.fit(x[:40], y[:40], epochs=6, batch_size=10, validation=(x[40:], y[40:]),
                     early_stop=2, callback=Snap(), monitor=("val-accuracy",))  # fmt: skip
    assert hist.stopped == "early-stop" and len(hist.records) == 4
    assert hist.best_epoch == 2 and hist.restored_best
    assert np.array_equal(model.layers[0].params["W"], snaps[2])


def test_eta_schedule_halves_eta_on_plateau(monkeypatch):
    x, y = toy_data()
    model = small_model()
    real = model._measure
    monkeypatch.setattr(model, "_measure", lambda xs, Ys, *a: (real(xs, Ys, *a)[0], 0.5))
    hist = model.fit(x[:40], y[:40], epochs=5, optimizer=SGD(0.8), validation=(x[40:], y[40:]),
                     eta_schedule=1)  # fmt: skip
    assert [r["eta"] for r in hist.records] == [0.8, 0.8, 0.4, 0.2, 0.1]


def test_nan_cost_stops_the_run():
    x, y = toy_data()
    model = small_model("input:6, dense:6:identity, dense:3:identity")
    hist = model.fit(x, y, epochs=50, batch_size=10, optimizer=SGD(50.0), loss="quadratic")
    assert hist.stopped == "nan"
    assert len(hist.records) < 50


def test_keyboard_interrupt_keeps_best_so_far():
    x, y = toy_data()
    model = small_model()

    class Interrupt(Callback):
        def on_epoch_end(self, record, m, improved):
            if record["epoch"] == 3:
                raise KeyboardInterrupt

    hist = model.fit(x, y, epochs=10, callback=Interrupt())
    assert hist.stopped == "interrupted" and len(hist.records) == 3
    assert hist.restored_best and hist.best_epoch is not None


def test_freeze_keeps_layer_fixed_and_replace_head():
    x, y = toy_data()
    model = small_model()
    model.freeze(1)
    W0 = model.layers[0].params["W"].copy()
    model.fit(x, y, epochs=2)
    assert np.array_equal(model.layers[0].params["W"], W0)
    model.replace_head(2, [L.Dense(4), L.Activation("softmax")])
    model.fit(x, np.minimum(y, 3), epochs=1, loss="log-likelihood")
    assert model.predict_proba(x).shape == (60, 4)


def test_fit_rejects_bad_arguments():
    x, y = toy_data()
    model = small_model()
    with pytest.raises(CvtoolError, match="batch_size"):
        model.fit(x, y, batch_size=0)
    with pytest.raises(CvtoolError, match="validation"):
        model.fit(x, y, early_stop=3)
    with pytest.raises(CvtoolError, match="Labels"):
        model.fit(x, y + 5)
    with pytest.raises(CvtoolError, match="input shape"):
        model.fit(x[:, :4], y)


# ---------------------------------------------------------------- files
def test_save_load_round_trip(tmp_path):
    x, y = toy_data()
    model = small_model("input:6, dense:5:relu, dropout:0.2, dense:3:softmax", dtype="float32")
    model.class_names = ("a", "b", "c")
    model.fit(x, y, epochs=2, loss="log-likelihood")
    model.freeze(1)
    path = model.save(tmp_path / "m.npz")
    loaded = Sequential.load(path, backend_name="numpy")  # compared with NumPy below
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded.class_names == ("a", "b", "c")
    assert loaded.meta["training"]["cost"] == "log-likelihood"
    assert [layer.trainable for layer in loaded.param_layers] == [False, True]
    assert loaded.summary() == model.summary()
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left no temporary


def test_load_rejects_bad_files(tmp_path):
    with pytest.raises(CvtoolError, match="not found"):
        Sequential.load(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CvtoolError, match="not a cvtool model"):
        Sequential.load(bad)
    with pytest.raises(CvtoolError, match="npz"):
        small_model().save(tmp_path / "m.txt")


def test_backends_agree(xp):
    x, y = toy_data()
    ref = small_model(seed=2)
    other = small_model(seed=2, xp=xp)
    ref.fit(x, y, epochs=1, seed=1, monitor=())
    other.fit(x, y, epochs=1, seed=1, monitor=())
    from cvtool.backend import to_numpy

    assert np.allclose(to_numpy(other.predict_proba(x)), ref.predict_proba(x), atol=1e-10)


def test_layers_from_sizes_model_matches_nielsen_shapes():
    model = Sequential.from_spec(layers_from_sizes("784,30,10")).build()
    assert model.count_params() == 784 * 30 + 30 + 30 * 10 + 10


def test_sigmoid_tanh_fallback_matches_expit(monkeypatch):
    """Without SciPy the sigmoid uses 0.5 tanh(z/2) + 0.5; both give the same numbers."""
    from cvtool.nn import activations

    z = np.linspace(-40, 40, 101)
    fast = activations.Sigmoid().forward(z)
    monkeypatch.setattr(activations, "_EXPIT", [None])
    slow = activations.Sigmoid().forward(z)
    assert np.allclose(fast, slow, rtol=1e-12, atol=1e-15)


def test_running_train_metrics_are_the_epochs_own_outputs_and_exact_ones_a_full_pass():
    """Default: the mean cost/accuracy of the outputs the steps produced (no extra
    pass); exact_train_metrics: a full pass with the end-of-epoch weights."""
    from cvtool.data.datasets import load_dataset
    from cvtool.nn.losses import get_loss

    ds = load_dataset("mnist-sample")
    x, y = ds.x_train[:300], ds.y_train[:300]

    def run(exact):
        model = Sequential.from_spec(parse_spec("input:784, dense:10:softmax")).build(np, "float64")
        hist = model.fit(x, y, epochs=1, batch_size=300, loss="log-likelihood", shuffle=False,
                         exact_train_metrics=exact, optimizer=SGD(0.1))  # fmt: skip
        return model, hist.records[0]

    # one step per epoch: the running figures are those of the weights before the step
    before = Sequential.from_spec(parse_spec("input:784, dense:10:softmax")).build(np, "float64")
    a = before.forward(before.prepare(x))
    Y = before.one_hot(y)
    _, running = run(False)
    assert running["train_cost"] == pytest.approx(get_loss("log-likelihood").fn(a, Y), rel=1e-12)
    assert running["train_accuracy"] == pytest.approx(float((a.argmax(1) == y).mean()))
    model, exact = run(True)
    after = model.forward(model.prepare(x))
    assert exact["train_cost"] == pytest.approx(get_loss("log-likelihood").fn(after, Y), rel=1e-12)
    assert exact["train_cost"] < running["train_cost"]  # the step lowered the cost
    assert model.meta["training"]["train_metrics"] == "exact pass"
