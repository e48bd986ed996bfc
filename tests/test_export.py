"""ONNX export: every preset and every layer kind, judged by ONNX Runtime.

The exported graph must give the same classes and probabilities within 1e-5
of ``Sequential.predict_proba`` on mnist-sample's 1000 test images; the FCN
layers (batch norm, transposed convolution, upsampling, skips) and the default
detector and segmenter must give every output within 1e-5 on random images and
generated canvases. Skipped
only where onnx or onnxruntime is not installed (CI installs both).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from cvtool.data.datasets import load_dataset  # noqa: E402
from cvtool.errors import CvtoolError  # noqa: E402
from cvtool.nn import layers as L  # noqa: E402
from cvtool.nn.export import export_onnx, load_onnx  # noqa: E402
from cvtool.nn.model import Sequential  # noqa: E402
from cvtool.nn.spec import PRESETS, parse_network  # noqa: E402

TOL = 1e-5
# Every layer kind and option: conv with stride, padding, dilation, 'same' and no bias;
# max, average and L2 pooling with padding and overlapping windows; every activation
# (identity as a dense layer's); dropout; explicit flatten; dense without bias.
EVERY_LAYER = (
    "input:28x28x1, conv:16x3:s=2:p=1:d=2:bias=0:relu, maxpool:3:s=1:p=1, "
    "conv:16x3:p=same:tanh, avgpool:3:s=1:p=1, l2pool:2:p=1, identity, dropout:0.3, "
    "flatten, dense:64:sigmoid, dense:32:bias=0:relu, dense:10:softmax"
)
# A small CNN that learns something in one epoch on 300 images (about 70% test accuracy).
TINY = (
    "input:28x28x1, conv:8x5:relu, l2pool:2, conv:8x3:p=1:tanh, avgpool:2, flatten, "
    "dropout:0.2, dense:10:softmax"
)
SPECS = {**{name: name for name in PRESETS}, "mlp-784-30-10": "784,30,10",
         "every-layer": EVERY_LAYER}  # fmt: skip


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist-sample")


def build(spec: str, seed: int = 1, dtype: str = "float32", init=None) -> Sequential:
    # He initialisation keeps the every-layer net's outputs apart from image to image
    # (with the default one its softmax is nearly the same for every input).
    init = init or ("he" if spec == EVERY_LAYER else None)
    return Sequential.from_spec(parse_network(spec), init=init).build(dtype=dtype, seed=seed)


def roundtrip(model, path, x, **kwargs):
    """Export, check the file with onnx.checker, run it; (cvtool outputs, ORT outputs)."""
    info = export_onnx(model, path, **kwargs)
    assert info["path"] == str(path) and path.stat().st_size == info["bytes"]
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    ort_model = load_onnx(path)
    assert ort_model.input_shape == model.input_shape
    assert ort_model.output_shape == model.output_shape
    expected = np.asarray(model.predict_proba(x), dtype=np.float64)
    got = ort_model.predict_proba(x)
    assert got.dtype == np.float32 and got.shape == expected.shape
    return expected, got


def assert_same(expected, got):
    # The outputs must differ from image to image by far more than the tolerance, or
    # agreeing within it would prove little.
    assert expected.std(axis=0).max() > 100 * TOL
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))


@pytest.mark.parametrize("name", list(SPECS))
def test_presets_and_every_layer_match_onnxruntime(name, mnist, tmp_path):
    model = build(SPECS[name])
    expected, got = roundtrip(model, tmp_path / f"{name}.onnx", mnist.x_test)
    assert len(got) == 1000
    assert_same(expected, got)


def test_keras_course_improved_floors_odd_sizes(tmp_path, mnist):
    # 28 -> conv 26 -> pool 13 -> conv 11 -> pool 5 (floor, the row and column left over
    # dropped) -> conv 3: ONNX's pooling must floor too or the dense weights would not fit.
    model = build("keras-course-improved")
    pool_shapes = [r["output_shape"] for r in model.summary() if r["type"] == "MaxPool2D"]
    assert pool_shapes == [(13, 13, 64), (5, 5, 32)]
    path = tmp_path / "k.onnx"
    export_onnx(model, path)
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=True)
    pools = [n for n in proto.graph.node if n.op_type == "MaxPool"]
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim[1:]]
              for v in proto.graph.value_info}  # fmt: skip
    assert shapes[pools[1].output[0]] == [32, 5, 5]  # NCHW inside the graph


def test_trained_model_matches(tmp_path, mnist):
    """Weights after a real epoch of training, not just the initialisation."""
    from cvtool.nn.optim import Adam

    model = build(TINY, seed=3, init="he")
    before = np.array(model.layers[0].params["W"])
    model.fit(mnist.x_train[:300], mnist.y_train[:300], epochs=1, batch_size=10,
              loss="log-likelihood", optimizer=Adam(0.003), seed=0)  # fmt: skip
    assert not np.allclose(before, model.layers[0].params["W"])
    model.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz", backend_name="numpy")
    expected, got = roundtrip(loaded, tmp_path / "m.onnx", mnist.x_test)
    assert_same(expected, got)
    assert (got.argmax(axis=1) == mnist.y_test).mean() > 0.3  # it learnt something


@pytest.mark.parametrize("opset", [13, 17, 18, 19])  # 19: the newest onnx 1.14 / ORT 1.16 know
def test_opsets(opset, tmp_path, mnist):
    model = build(EVERY_LAYER, seed=2)
    expected, got = roundtrip(model, tmp_path / "m.onnx", mnist.x_test[:200], opset=opset)
    assert_same(expected, got)
    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == opset


def test_image_output_softmax_on_channels(tmp_path, mnist):
    # A model that ends on an image: softmax over the channel axis (cvtool's last axis)
    # and the output transposed back to NHWC.
    model = build("input:28x28x1, conv:4x3:p=1:relu, avgpool:2, conv:3x3:p=1:softmax")
    expected, got = roundtrip(model, tmp_path / "seg.onnx", mnist.x_test[:50])
    assert got.shape == (50, 14, 14, 3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)


def test_float64_model_exports_float32(tmp_path, mnist):
    model = build("nielsen-ch6", dtype="float64")
    expected, got = roundtrip(model, tmp_path / "m.onnx", mnist.x_test[:200])
    assert_same(expected, got)


def test_metadata_batch_sizes_and_inputs(tmp_path, mnist):
    model = build("nielsen-ch6")
    model.class_names = tuple(f"digit {i}" for i in range(10))
    path = tmp_path / "m.onnx"
    export_onnx(model, path)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["cvtool.class_names"]) == list(model.class_names)
    assert json.loads(props["cvtool.input_shape"]) == [28, 28, 1]
    assert props["cvtool.input_layout"] == "NHWC" and "255" in props["cvtool.preprocess"]
    assert props["cvtool.spec"] == model.spec_text
    om = load_onnx(path)
    assert om.class_names == model.class_names
    x = mnist.x_test[:5]  # (5, 28, 28) uint8
    full = om.predict_proba(x)
    for n in (1, 3):  # the batch axis is dynamic
        np.testing.assert_array_equal(om.predict_proba(x[:n]), full[:n])
    as_float = om.predict_proba(x.astype(np.float32).reshape(5, 784) / 255)
    np.testing.assert_allclose(as_float, full, atol=1e-6)  # uint8 / 255, as Sequential does
    np.testing.assert_array_equal(om.predict(x), full.argmax(axis=1))
    with pytest.raises(CvtoolError, match="do not fit the model's input shape"):
        om.predict_proba(np.zeros((2, 27, 27), np.uint8))


# ---------------------------------------------------------------------- bad input
class Fancy(L.Layer):
    kind = "fancy"

    def forward(self, x, training=False):
        return x


def test_unexportable_layer_is_named(tmp_path):
    model = build("784,30,10")
    model.layers.insert(1, Fancy())
    with pytest.raises(CvtoolError, match=r"Layer 'fancy' \(Fancy\) cannot be exported") as err:
        export_onnx(model, tmp_path / "m.onnx")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "m.onnx").exists()


def test_library_refuses_bad_outputs(tmp_path):
    model = build("784,10")
    with pytest.raises(CvtoolError, match="end in .onnx"):
        export_onnx(model, tmp_path / "m.npz")
    (tmp_path / "m.onnx").write_bytes(b"keep")
    with pytest.raises(CvtoolError, match="exists"):
        export_onnx(model, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_bytes() == b"keep"
    export_onnx(model, tmp_path / "m.onnx", overwrite=True)
    assert load_onnx(tmp_path / "m.onnx").output_shape == (10,)
    with pytest.raises(CvtoolError, match="'opset' parameter"):
        export_onnx(model, tmp_path / "n.onnx", opset=9)
    with pytest.raises(CvtoolError, match="Build or load"):
        export_onnx(Sequential.from_spec(parse_network("784,10")), tmp_path / "u.onnx")


def test_load_onnx_refuses_non_onnx_files(tmp_path):
    (tmp_path / "x.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(CvtoolError, match="is not an ONNX model"):
        load_onnx(tmp_path / "x.onnx")
    with pytest.raises(CvtoolError, match="not found"):
        load_onnx(tmp_path / "missing.onnx")


@pytest.mark.parametrize("package", ["onnx", "onnxruntime"])
def test_missing_package_says_what_to_install(package, monkeypatch, tmp_path):
    model = build("784,10")
    export_onnx(model, tmp_path / "m.onnx")
    monkeypatch.setitem(sys.modules, package, None)  # import raises ImportError
    with pytest.raises(CvtoolError, match=r'pip install "cvtool\[onnx\]"'):
        if package == "onnx":
            export_onnx(model, tmp_path / "n.onnx")
        else:
            load_onnx(tmp_path / "m.onnx")


def test_importing_cvtool_does_not_import_onnx():
    code = ("import sys, cvtool.nn.export, cvtool.cli; "
            "print(sorted(m for m in ('onnx', 'onnxruntime') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def saved(tmp_path_factory, mnist):
    path = tmp_path_factory.mktemp("models") / "ch6.npz"
    model = build("nielsen-ch6")
    model.class_names = tuple(mnist.class_names)
    model.save(path)
    return path


def one_error_line(result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_cli_export_json_and_runs(cli, saved, tmp_path, mnist):
    out = tmp_path / "ch6.onnx"
    result = cli("export", saved, out, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["path"] == str(out) and doc["opset"] == 17 and doc["model"] == str(saved)
    assert doc["input_shape"] == [None, 28, 28, 1] and doc["output_shape"] == [None, 10]
    assert doc["nodes"][0] == "Transpose" and doc["nodes"][-1] == "Softmax"
    om = load_onnx(out)
    assert om.class_names == tuple(mnist.class_names)
    model = Sequential.load(saved, backend_name="numpy")
    assert_same(np.asarray(model.predict_proba(mnist.x_test)), om.predict_proba(mnist.x_test))


def test_cli_export_human_output_and_opset(cli, saved, tmp_path):
    result = cli("export", saved, tmp_path / "m.onnx", "--opset", "13")
    assert result.exit_code == 0, result.stderr
    assert "Nx28x28x1" in result.stdout and "MaxPool" in result.stdout
    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == 13


def test_cli_existing_output_needs_force(cli, saved, tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old")
    line = one_error_line(cli("export", saved, out))
    assert "exists" in line and "--force" in line
    assert out.read_bytes() == b"old"
    result = cli("export", saved, out, "--force")
    assert result.exit_code == 0, result.stderr
    assert load_onnx(out).input_shape == (28, 28, 1)


def test_cli_bad_inputs(cli, saved, tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    assert "not a cvtool model file" in one_error_line(
        cli("export", tmp_path / "junk.npz", tmp_path / "a.onnx")
    )
    np.savez(tmp_path / "arrays.npz", x=np.zeros(3))
    assert "not a cvtool model file" in one_error_line(
        cli("export", tmp_path / "arrays.npz", tmp_path / "a.onnx")
    )
    assert "not found" in one_error_line(cli("export", tmp_path / "none.npz", tmp_path / "a.onnx"))
    assert ".onnx" in one_error_line(cli("export", saved, tmp_path / "a.npz"))
    assert "opset" in one_error_line(cli("export", saved, tmp_path / "a.onnx", "--opset", "99"))
    assert not (tmp_path / "a.onnx").exists()


def test_predict_pipeline_same_for_npz_and_onnx(saved, tmp_path, mnist):
    """What ``cvtool predict`` does with a model (read_inputs, predict_proba, predictions)
    gives the same rows for the .npz and its export, through load_model."""
    from PIL import Image

    from cvtool.nn.export import load_model
    from cvtool.nn.inference import predictions, read_inputs

    out = tmp_path / "m.onnx"
    export_onnx(Sequential.load(saved), out)
    Image.fromarray(mnist.x_test[0]).save(tmp_path / "a.png")
    np.save(tmp_path / "b.npy", mnist.x_test[1:4])
    rows = {}
    for path in (saved, out):
        model = load_model(path)
        x, names = read_inputs([tmp_path / "a.png", tmp_path / "b.npy"], model.input_shape)
        rows[path.suffix] = (names, predictions(model.predict_proba(x), model.class_names, 3))
    assert type(load_model(out)).__name__ == "OnnxModel"
    (names_npz, npz), (names_onnx, onx) = rows[".npz"], rows[".onnx"]
    assert names_npz == names_onnx and len(npz) == 4
    for a, b in zip(npz, onx, strict=True):
        assert (a["class"], a["name"]) == (b["class"], b["name"])
        assert [t["class"] for t in a["top"]] == [t["class"] for t in b["top"]]
        np.testing.assert_allclose(b["probabilities"], a["probabilities"], atol=TOL)


def test_predict_command_runs_an_onnx_file_like_the_npz(cli, tmp_path):
    """`cvtool predict model.onnx` prints what `cvtool predict model.npz` prints."""
    import json

    from PIL import Image

    from cvtool.data.datasets import load_dataset

    npz, onnx_path = tmp_path / "m.npz", tmp_path / "m.onnx"
    assert cli("train-mlp", "--epochs", "1", "--train-size", "300", "--out", npz).exit_code == 0
    assert cli("export", npz, onnx_path).exit_code == 0
    img = tmp_path / "digit.png"
    Image.fromarray(load_dataset("mnist-sample").x_test[0]).save(img)
    docs = []
    for model in (npz, onnx_path):
        result = cli("predict", model, img, "--json")
        assert result.exit_code == 0, result.stderr
        docs.append(json.loads(result.stdout)["predictions"][0])
    top = [[(t["class"], t["probability"]) for t in d["top"]] for d in docs]
    assert [c for c, _ in top[0]] == [c for c, _ in top[1]]
    assert [p for _, p in top[0]] == pytest.approx([p for _, p in top[1]], abs=1e-5)


# ---------------------------------------------------------------------- FCN layers
# Batch norm, transposed convolution (with and without output padding), nearest and
# bilinear upsampling (square and non-square factors), and taps merged by concat and add:
# a tap on the NHWC input, one after a conv (NCHW) and taps on (N, D) rows.
FCN_SPECS = {
    "bilinear-concat": (
        "input:16x16x1, conv:4x3:p=same, bn, relu, tap:a, pool:2, conv:8x3:relu:p=same, "
        "deconv:4x4:s=2:p=1, concat:a, upsample:2:bilinear, conv:3x1"
    ),
    "nearest-add": (
        "input:15x15x2, tap:in, conv:2x3:p=same, add:in, bn, relu, pool:2, "
        "conv:6x3:p=same, tap:b, conv:6x1:bias=0, bn, add:b, "
        "deconv:5x3x2:s=2:p=1:op=1:relu, upsample:2x3, tap:c, bn, concat:c, "
        "upsample:3x1:bilinear, conv:4x1:softmax"
    ),
    "rows": (
        "input:20, tap:a, dense:20:relu, add:a, bn, dense:16, tap:b, relu, concat:b, "
        "dense:5:softmax"
    ),
}


def perturb(model, seed: int = 0) -> None:
    """Random biases, scales and shifts (not the initial zeros and ones), then a few
    training-mode passes so every batch norm's running statistics move off (0, 1)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for key in ("b", "beta"):
            if key in layer.params:
                layer.params[key][...] = rng.normal(0, 0.3, layer.params[key].shape)
        if "gamma" in layer.params:
            layer.params["gamma"][...] = rng.uniform(0.5, 1.5, layer.params["gamma"].shape)
    for _ in range(4):
        x = rng.normal(0.4, 0.5, (16, *model.input_shape)).astype(model.dtype)
        model.forward(model.xp.asarray(x), training=True)
    for layer in model.layers:
        if getattr(layer, "state", None):
            assert not np.allclose(layer.state["running_mean"], 0)
            assert not np.allclose(layer.state["running_var"], 1)


def fcn_inputs(model, n: int = 24, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *model.input_shape)).astype(np.float32)


def assert_close_outputs(expected, got):
    assert expected.std(axis=0).max() > 100 * TOL  # outputs differ from input to input
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(FCN_SPECS))
def test_fcn_layers_match_onnxruntime(name, dtype, tmp_path):
    model = build(FCN_SPECS[name], seed=4, dtype=dtype, init="he")
    perturb(model)
    x = fcn_inputs(model)
    expected, got = roundtrip(model, tmp_path / f"{name}.onnx", x)
    assert_close_outputs(expected, got)
    ops = {n.op_type for n in onnx.load(str(tmp_path / f"{name}.onnx")).graph.node}
    assert FCN_OPS[name] <= ops


FCN_OPS = {  # the ONNX operators each FCN spec must produce
    "bilinear-concat": {"BatchNormalization", "ConvTranspose", "Concat", "Resize"},
    "nearest-add": {"BatchNormalization", "ConvTranspose", "Concat", "Add", "Resize"},
    "rows": {"BatchNormalization", "Concat", "Add"},
}


@pytest.mark.parametrize("opset", [13, 17, 18, 19])  # Resize 13/18/19, BatchNormalization 14/15
def test_fcn_layers_opsets(opset, tmp_path):
    for name in ("bilinear-concat", "nearest-add"):
        model = build(FCN_SPECS[name], seed=6, init="he")
        perturb(model, seed=1)
        path = tmp_path / f"{name}.onnx"
        expected, got = roundtrip(model, path, fcn_inputs(model, 8), opset=opset)
        assert_close_outputs(expected, got)
        assert onnx.load(str(path)).opset_import[0].version == opset


def resize_outputs(tmp_path, mode: str, factor: str, attrs: dict, monkeypatch):
    """(cvtool, ORT) for a lone upsampling layer exported with Resize attributes `attrs`."""
    from cvtool.nn import export_layers

    monkeypatch.setitem(export_layers.RESIZE_ATTRS, mode, attrs)
    model = build(f"input:7x5x3, upsample:{factor}:{mode}")
    x = np.random.default_rng(2).normal(size=(6, 7, 5, 3)).astype(np.float32)
    return roundtrip(model, tmp_path / "up.onnx", x, overwrite=True)


@pytest.mark.parametrize("factor", ["2", "3x2", "4x1"])
def test_resize_coordinate_modes(factor, tmp_path, monkeypatch):
    # Bilinear: 'half_pixel' (what the export writes) and 'pytorch_half_pixel' both equal
    # cvtool's align_corners=False upsampling; 'asymmetric' and 'align_corners' do not.
    for ctm in ("half_pixel", "pytorch_half_pixel", "asymmetric", "align_corners"):
        attrs = {"mode": "linear", "coordinate_transformation_mode": ctm}
        expected, got = resize_outputs(tmp_path, "bilinear", factor, attrs, monkeypatch)
        err = np.abs(got - expected).max()
        assert (err < TOL) == (ctm in ("half_pixel", "pytorch_half_pixel")), (ctm, err)
    # Nearest: 'asymmetric' + 'floor' (what the export writes) copies pixel i // f;
    # 'ceil' does not.
    for nearest_mode in ("floor", "ceil"):
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": nearest_mode}  # fmt: skip
        expected, got = resize_outputs(tmp_path, "nearest", factor, attrs, monkeypatch)
        err = np.abs(got - expected).max()
        assert (err == 0) == (nearest_mode == "floor"), (nearest_mode, err)


def test_export_uses_the_documented_resize_attributes(tmp_path):
    from cvtool.nn.export_layers import RESIZE_ATTRS

    model = build("input:4x4x1, upsample:2:bilinear, upsample:3")
    export_onnx(model, tmp_path / "up.onnx")
    resizes = [n for n in onnx.load(str(tmp_path / "up.onnx")).graph.node if n.op_type == "Resize"]
    attrs = [{a.name: onnx.helper.get_attribute_value(a).decode() for a in n.attribute}
             for n in resizes]  # fmt: skip
    assert attrs == [RESIZE_ATTRS["bilinear"], RESIZE_ATTRS["nearest"]]
    assert attrs[0]["coordinate_transformation_mode"] == "half_pixel"


# ---------------------------------------------------------------------- detector, segmenter
@pytest.fixture(scope="module")
def canvases():
    from cvtool.data.canvas import make_canvases

    return make_canvases(24, split="test", seed=3)


def default_network(task: str, canvases) -> Sequential:
    """The trainers' default network for 64x64x1 canvases, with their {placeholders}
    filled in as train_detector and train_segmenter fill them."""
    from cvtool.nn.cnn import cnn_model

    h = canvases.images.shape[1]
    if task == "detector":
        from cvtool.detect.train import DETECTOR
        from cvtool.detect.yolo import YoloLoss

        grid = 8
        head = YoloLoss(grid, 2, len(canvases.class_names)).head_shape[2]
        text = DETECTOR.replace("{head}", str(head)).replace("{pool}", str(h // (4 * grid)))
        return cnn_model(text, canvases.images.shape[1:], init="pytorch")
    from cvtool.segment import SEGMENTER

    text = SEGMENTER.replace("{classes}", str(len(canvases.class_names) + 1))
    return cnn_model(text, canvases.images.shape[1:], init="he")


@pytest.mark.parametrize("task", ["detector", "segmenter"])
def test_detector_and_segmenter_match_on_canvases(task, canvases, cli, tmp_path):
    """The default networks, saved to .npz, exported by `cvtool export`, run on canvases."""
    model = default_network(task, canvases).build(seed=7)
    assert model.input_shape == (64, 64, 1)
    perturb(model, seed=2)
    model.save(tmp_path / "m.npz")
    out = tmp_path / "m.onnx"
    result = cli("export", tmp_path / "m.npz", out, "--json")
    assert result.exit_code == 0, result.stderr
    nodes = json.loads(result.stdout)["nodes"]
    # One Transpose in (NHWC -> NCHW) and one out: the graph stays NCHW through every
    # batch norm, upsampling and concat.
    assert nodes.count("Transpose") == 2 and nodes[0] == nodes[-1] == "Transpose"
    wanted = {"detector": {"BatchNormalization"}, "segmenter": {"Resize", "Concat"}}[task]
    assert wanted <= set(nodes)
    loaded = Sequential.load(tmp_path / "m.npz", backend_name="numpy")
    expected = np.asarray(loaded.predict_proba(canvases.images), dtype=np.float64)
    got = load_onnx(out).predict_proba(canvases.images)  # uint8 canvases, / 255 in both
    assert got.shape == expected.shape == (24, *model.output_shape)
    assert_close_outputs(expected, got)
