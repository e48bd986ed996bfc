"""cvtool.shapes: the course's worked examples, published tables, properties, and PyTorch.

The published figures come from the course notes, torchinfo's README (its
ConvNet example) and cs231n's VGG16 walk-through; the cross-check builds the
same layers in PyTorch and compares output shapes and parameter counts.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvtool import shapes, summary
from cvtool.errors import CvtoolError
from cvtool.nn.spec import PRESETS, parse_network, parse_spec

VGG16 = "input:224x224x3, " + ", ".join(
    ["conv:64x3:relu:p=same"] * 2
    + ["pool:2"]
    + ["conv:128x3:relu:p=same"] * 2
    + ["pool:2"]
    + ["conv:256x3:relu:p=same"] * 3
    + ["pool:2"]
    + ["conv:512x3:relu:p=same"] * 3
    + ["pool:2"]
    + ["conv:512x3:relu:p=same"] * 3
    + ["pool:2", "flatten", "dense:4096:relu", "dense:4096:relu", "dense:1000:softmax"]
)
ALEXNET = (
    "input:227x227x3, conv:96x11:s=4:relu, pool:3:s=2, conv:256x5:p=2:relu, pool:3:s=2, "
    "conv:384x3:p=1:relu, conv:384x3:p=1:relu, conv:256x3:p=1:relu, pool:3:s=2, "
    "dense:4096:relu, dense:4096:relu, dense:1000:softmax"
)
# torchinfo README: ConvNet (conv1 10x5x5, max-pool 2, conv2 20x5x5, Dropout2d, max-pool 2,
# fc1 320->50, fc2 50->10) on batch 16 of 1x28x28.
TORCHINFO_CONVNET = (
    "input:28x28x1, conv:10x5, maxpool:2, relu, conv:20x5, dropout:0.5, maxpool:2, relu, "
    "flatten, dense:50:relu, dropout:0.5, dense:10"
)


def layers(summary):
    """Rows of the layers (the input row dropped)."""
    return summary["rows"][1:]


# ---------------------------------------------------------------- must come out right


def test_alexnet_conv1():
    assert shapes.conv2d_output((227, 227, 3), 96, 11, stride=4) == (55, 55, 96)
    assert shapes.conv2d_params(3, 96, 11) == (34_848, 96)
    assert sum(shapes.conv2d_params(3, 96, 11)) == 34_944
    assert shapes.conv2d_params(3, 96, 11, bias=False) == (34_848, 0)


def test_fully_connected_784_20_10_5():
    totals = summary.summarize(parse_network("784,20,10,5"))["totals"]
    assert (totals["weights"], totals["biases"], totals["params"]) == (15_930, 35, 15_965)


def test_nielsen_conv_and_chain():
    assert shapes.conv2d_output((28, 28, 1), 20, 5) == (24, 24, 20)
    assert sum(shapes.conv2d_params(1, 20, 5)) == 520
    s = summary.summarize(parse_spec("input:28x28x1, conv:20x5, pool:2, conv:40x5, pool:2"))
    assert [r["output_shape"][0] for r in s["rows"]] == [28, 24, 12, 8, 4]
    assert layers(s)[0]["params"] == 520


def test_keras_course_network():
    s = summary.summarize(parse_network("keras-course"))
    assert [r["output_shape"] for r in layers(s)] == [
        (26, 26, 64),
        (24, 24, 32),
        (22, 22, 32),
        (15488,),
        (64,),
        (10,),
    ]
    # By hand: 3*3*1*64+64, 3*3*64*32+32, 3*3*32*32+32, 15488*64+64, 64*10+10.
    by_hand = [640, 18_464, 9_248, 0, 991_296, 650]
    assert [r["params"] for r in layers(s)] == by_hand
    assert s["totals"]["params"] == sum(by_hand) == 1_020_298


def test_keras_course_network_matches_torch():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 64, 3),
        nn.Conv2d(64, 32, 3),
        nn.Conv2d(32, 32, 3),
        nn.Flatten(),
        nn.Linear(22 * 22 * 32, 64),
        nn.Linear(64, 10),
    )
    assert sum(p.numel() for p in model.parameters()) == 1_020_298
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_torchinfo_readme_convnet():
    s = summary.summarize(parse_spec(TORCHINFO_CONVNET), batch=16)
    rows = {r["spec"]: r for r in layers(s)}
    # torchinfo lists the modules (not the functional pools and relus).
    listed = [rows["conv:10x5"], rows["conv:20x5"], rows["dense:50:relu"], rows["dense:10"]]
    assert [r["output_shape"] for r in listed] == [(24, 24, 10), (8, 8, 20), (50,), (10,)]
    assert [r["params"] for r in listed] == [260, 5_020, 16_050, 510]
    assert layers(s)[4]["type"] == "Dropout" and layers(s)[4]["output_shape"] == (8, 8, 20)
    assert s["totals"]["params"] == s["totals"]["trainable"] == 21_840
    assert s["totals"]["non_trainable"] == 0
    # torchinfo 1.8.0 prints "Total mult-adds (M): 7.80" for the batch of 16: every weight
    # and bias once per output position. cvtool's MACs leave the bias additions out.
    per_sample = 24 * 24 * 10 * 26 + 8 * 8 * 20 * 251 + 50 * 321 + 10 * 51
    assert 16 * s["totals"]["mult_adds"] == 16 * per_sample == 7_801_600
    assert s["totals"]["macs"] == 24 * 24 * 10 * 25 + 8 * 8 * 20 * 250 + 50 * 320 + 10 * 50
    # torchinfo's "MB" is 10^6 bytes: "Input size (MB): 0.05", "Params size (MB): 0.09",
    # "Forward/backward pass size (MB): 0.91" (outputs of the listed modules, x2). In
    # cvtool's binary units the same bytes are 0.05, 0.08 and 0.87 MiB.
    out_bytes = sum(r["elements"] for r in listed) * 16 * 4
    param_bytes = s["totals"]["param_bytes"]["float32"]
    for nbytes, mb, mib in ((16 * 28 * 28 * 4, 0.05, 0.05), (param_bytes, 0.09, 0.08),
                            (2 * out_bytes, 0.91, 0.87)):  # fmt: skip
        assert (round(nbytes / 1e6, 2), round(nbytes / 2**20, 2)) == (mb, mib)


def test_cs231n_vgg16():
    s = summary.summarize(parse_spec(VGG16))
    rows = s["rows"]
    assert s["totals"]["params"] == 138_357_544
    # cs231n's table: "memory" per layer (activations) and "weights" (no biases).
    memory = [224 * 224 * 3] + [224 * 224 * 64] * 2 + [112 * 112 * 64]
    memory += [112 * 112 * 128] * 2 + [56 * 56 * 128] + [56 * 56 * 256] * 3 + [28 * 28 * 256]
    memory += [28 * 28 * 512] * 3 + [14 * 14 * 512] + [14 * 14 * 512] * 3 + [7 * 7 * 512]
    memory += [4096, 4096, 1000]
    weights = [0, 3 * 3 * 3 * 64, 3 * 3 * 64 * 64, 0, 3 * 3 * 64 * 128, 3 * 3 * 128 * 128, 0]
    weights += [3 * 3 * 128 * 256] + [3 * 3 * 256 * 256] * 2 + [0]
    weights += [3 * 3 * 256 * 512] + [3 * 3 * 512 * 512] * 2 + [0]
    weights += [3 * 3 * 512 * 512] * 3 + [0]
    weights += [7 * 7 * 512 * 4096, 4096 * 4096, 4096 * 1000]
    no_flatten = [r for r in rows if r["type"] != "Flatten"]
    assert [r["elements"] for r in no_flatten] == memory
    assert [r["weights"] for r in no_flatten] == weights
    assert 138e6 <= s["totals"]["weights"] < 139e6  # "TOTAL params: 138M parameters"
    # The sum of cs231n's own per-layer memory lines (their TOTAL line says 24M, see docs).
    assert s["totals"]["activation_elements"] == sum(memory) == 15_237_608
    assert s["totals"]["forward_bytes"] == 4 * sum(memory)
    assert s["totals"]["forward_backward_bytes"] == 8 * sum(memory)
    # Known receptive fields: conv5_3 sees 196 pixels, pool5 212, with jump 32.
    assert rows[-6]["rf"] == (196, 196) and rows[-5]["rf"] == (212, 212)
    assert rows[-5]["jump"] == (32, 32)
    assert round(s["totals"]["macs"] / 1e9, 2) == 15.47  # tests/test_macs.py: exact figures


def test_alexnet_whole():
    s = summary.summarize(parse_spec(ALEXNET))
    assert s["totals"]["params"] == 62_378_344
    pool5 = layers(s)[7]
    assert pool5["output_shape"] == (6, 6, 256) and pool5["rf"] == (195, 195)
    assert layers(s)[0]["macs"] == 105_415_200


# ---------------------------------------------------------------- rules and messages


def test_exactness_error_names_a_fix():
    with pytest.raises(CvtoolError, match="stride 1 would make it exact"):
        shapes.output_size(28, 5, 2)
    with pytest.raises(CvtoolError, match="padding 2 would make it exact"):
        shapes.output_size(227, 11, 4, 1)
    assert shapes.output_size(28, 5, 2, floor=True) == 12


def test_kernel_larger_than_input_names_padding():
    with pytest.raises(CvtoolError, match="use padding >= 1"):
        shapes.output_size(3, 5)


def test_same_padding():
    assert shapes.conv2d_output((28, 28, 1), 8, 5, padding="same") == (28, 28, 8)
    # Keras 'same' at stride 2: ceil(W / S), never an exactness error.
    assert shapes.conv2d_output((224, 224, 3), 64, 3, stride=2, padding="same") == (112, 112, 64)
    assert shapes.conv2d_output((15, 15, 3), 4, 3, stride=2, padding="same") == (8, 8, 4)
    with pytest.raises(CvtoolError, match="odd kernel span"):
        shapes.conv2d_output((28, 28, 1), 8, 4, padding="same")
    assert shapes.conv2d_output((28, 28, 1), 8, 3, padding="same", dilation=2) == (28, 28, 8)


def test_pool_padding_at_most_half_the_window():
    with pytest.raises(CvtoolError, match="at most half the window"):
        shapes.pool2d_output((8, 8, 1), 2, padding=2)


def test_summarize_names_the_failing_layer():
    with pytest.raises(CvtoolError, match=r"^layer 2 \(conv:8x7\): kernel 7 is larger"):
        summary.summarize(parse_spec("input:8x8x1, conv:4x3, conv:8x7"))
    with pytest.raises(CvtoolError, match="No input shape"):
        summary.summarize(parse_spec("dense:10"))
    with pytest.raises(CvtoolError, match="needs an image input"):
        summary.summarize(parse_spec("input:784, conv:4x3"))
    with pytest.raises(CvtoolError, match="disagrees"):
        summary.summarize(parse_spec("input:784, dense:10"), input_shape=(28, 28, 1))


def test_floor_notes_what_it_dropped():
    s = summary.summarize(parse_spec("input:28x28x1, conv:4x5:s=2"), floor=True)
    assert s["rows"][1]["output_shape"] == (12, 12, 4)
    assert s["rows"][1]["dropped"] == (1, 1)
    assert "--floor" in s["notes"][0] and "dropped 1 row(s)" in s["notes"][1]


def test_dense_after_image_flattens_and_sees_everything():
    s = summary.summarize(parse_spec("input:4x4x2, conv:3x3, dense:5"))
    dense = s["rows"][2]
    assert dense["weights"] == 2 * 2 * 3 * 5 and dense["note"].startswith("flattens")
    assert dense["rf"] is None and s["rows"][1]["rf"] == (3, 3)


def test_batchnorm_counts_non_trainable():
    s = summary.summarize(parse_spec("input:8x8x3, conv:16x3, bn"))
    bn = s["rows"][2]
    assert (bn["trainable"], bn["non_trainable"]) == (32, 32)
    assert s["totals"]["non_trainable"] == 32
    assert s["totals"]["params"] == 3 * 3 * 3 * 16 + 16 + 64


def test_memory_by_dtype_and_batch():
    s = summary.summarize(parse_network("keras-course"), batch=8, dtype="float64")
    t = s["totals"]
    assert t["param_bytes"]["float16"] == 2 * t["params"]
    assert t["param_bytes_dtype"] == 8 * t["params"]
    # input + every output except flatten (a view)
    elements = 784 + 26 * 26 * 64 + 24 * 24 * 32 + 22 * 22 * 32 + 64 + 10
    assert t["forward_bytes"] == elements * 8 * 8
    with pytest.raises(CvtoolError, match="dtype"):
        summary.summarize(parse_network("keras-course"), dtype="float8")


def test_columns():
    s = summary.summarize(parse_network("nielsen-ch6"))
    headers, rows = summary.summary_table(s, summary.parse_columns("output_size,num_params,rf"))
    assert headers == ["Output shape", "Param #", "Receptive field"]
    assert rows[1] == ["24x24x20", 520, "5"] and rows[-1][2] == "all"
    with pytest.raises(CvtoolError, match="cols"):
        summary.parse_columns("layer,colour")


def test_presets_all_summarize():
    for name in PRESETS:
        s = summary.summarize(parse_network(name), floor=True)
        assert s["totals"]["output_shape"] == (10,)
    # keras-course-improved pools 11x11 by 2, which only Keras' floor rounding allows
    with pytest.raises(CvtoolError, match="layer 4 .*--floor"):
        summary.summarize(parse_network("keras-course-improved"))


# ---------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, 64),
    kernel=st.integers(1, 9),
    stride=st.integers(1, 5),
    padding=st.integers(0, 4),
    dilation=st.integers(1, 3),
)
def test_output_size_floor_bounds(size, kernel, stride, padding, dilation):
    k = shapes.effective_kernel(kernel, dilation)
    if k > size + 2 * padding:
        with pytest.raises(CvtoolError):
            shapes.output_size(size, kernel, stride, padding, dilation, floor=True)
        return
    o = shapes.output_size(size, kernel, stride, padding, dilation, floor=True)
    # the last window fits, one more would not
    assert (o - 1) * stride + k <= size + 2 * padding < o * stride + k
    exact = (size + 2 * padding - k) % stride == 0
    if exact:
        assert shapes.output_size(size, kernel, stride, padding, dilation) == o
    else:
        with pytest.raises(CvtoolError, match="--floor"):
            shapes.output_size(size, kernel, stride, padding, dilation)


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 64), kernel=st.sampled_from([1, 3, 5, 7]), stride=st.integers(1, 4))
def test_same_is_ceil(size, kernel, stride):
    out = shapes.conv2d_output((size, size, 1), 2, kernel, stride, "same")
    assert out[:2] == (-(-size // stride),) * 2


@settings(max_examples=100, deadline=None)
@given(c=st.integers(1, 64), f=st.integers(1, 64), kh=st.integers(1, 7), kw=st.integers(1, 7))
def test_conv_params_are_weights_plus_one_bias_per_filter(c, f, kh, kw):
    w, b = shapes.conv2d_params(c, f, (kh, kw))
    assert w == kh * kw * c * f and b == f
    assert shapes.conv2d_params(c, 2 * f, (kh, kw))[0] == 2 * w


@settings(max_examples=60, deadline=None)
@given(kernels=st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3)), min_size=1, max_size=5))
def test_receptive_field_grows_and_jump_multiplies(kernels):
    kernels = [(k if k % 2 else k + 1, s) for k, s in kernels]  # 'same' needs odd kernels
    text = "input:256x256x1, " + ", ".join(f"conv:2x{k}:s={s}:p=same" for k, s in kernels)
    rows = summary.summarize(parse_spec(text), floor=True)["rows"]
    jump, rf = 1, 1
    for (k, s), row in zip(kernels, rows[1:], strict=True):
        rf += (k - 1) * jump
        jump *= s
        assert row["rf"] == (rf, rf) and row["jump"] == (jump, jump)
    totals = summary.summarize(parse_spec(text), floor=True)["totals"]
    assert totals["params"] == sum(r["params"] for r in rows)


# ---------------------------------------------------------------- PyTorch cross-check


def _random_settings(rnd: random.Random):
    """A random valid conv, pool or dense layer on a small random input."""
    kind = rnd.choice(["conv", "conv", "max", "avg", "l2", "dense"])
    h, w, c = rnd.randint(1, 24), rnd.randint(1, 24), rnd.randint(1, 4)
    k, s, d = rnd.randint(1, 5), rnd.randint(1, 4), rnd.randint(1, 2) if kind == "conv" else 1
    p = rnd.randint(0, k // 2)
    return kind, (h, w, c), k, s, p, d, rnd.randint(1, 6), rnd.random() < 0.7


def test_random_layers_match_torch():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    rnd = random.Random(0)
    checked = 0
    for _ in range(400):
        kind, (h, w, c), k, s, p, d, f, bias = _random_settings(rnd)
        x = torch.zeros(1, c, h, w)
        if kind == "dense":
            ours_shape = (f,)
            ours_params = sum(shapes.dense_params(h * w * c, f, bias))
            m = nn.Linear(h * w * c, f, bias=bias)
            got = m(x.reshape(1, -1)).shape[1:]
            assert tuple(got) == ours_shape
            assert sum(q.numel() for q in m.parameters()) == ours_params
            checked += 1
            continue
        if kind == "conv":
            m = nn.Conv2d(c, f, k, stride=s, padding=p, dilation=d, bias=bias)

            def ours():
                return shapes.conv2d_output((h, w, c), f, k, s, p, d, floor=True)  # noqa: B023

            params = sum(shapes.conv2d_params(c, f, k, bias))
        else:
            m = {
                "max": lambda: nn.MaxPool2d(k, s, p),  # noqa: B023
                "avg": lambda: nn.AvgPool2d(k, s, p),  # noqa: B023
                "l2": lambda: nn.LPPool2d(2, k, s),  # noqa: B023
            }[kind]()
            pad = 0 if kind == "l2" else p

            def ours():
                return shapes.pool2d_output((h, w, c), k, s, pad, floor=True)  # noqa: B023

            params = 0
        try:
            theirs = m(x).shape
        except RuntimeError:  # torch refuses: kernel larger than the padded input
            with pytest.raises(CvtoolError):
                ours()
            continue
        oh, ow, oc = ours()
        assert (oc, oh, ow) == tuple(theirs[1:]), (kind, h, w, c, k, s, p, d)
        assert params == sum(q.numel() for q in m.parameters())
        checked += 1
    assert checked > 250


def test_batchnorm_matches_torch():
    torch = pytest.importorskip("torch")
    bn = torch.nn.BatchNorm2d(16)
    trainable = sum(p.numel() for p in bn.parameters())
    stats = bn.running_mean.numel() + bn.running_var.numel()
    assert shapes.batchnorm_params(16) == (trainable, stats)


@pytest.mark.parametrize(
    "text",
    [
        PRESETS["keras-course"],
        PRESETS["keras-course-improved"],
        PRESETS["nielsen-ch6"],
        "input:17x13x2, conv:3x3x5:s=2:relu, avgpool:3:s=1:p=1, conv:4x3:d=2:p=same, "
        "l2pool:2, dense:7, dense:3:bias=0",
    ],
)
def test_cvtool_layers_forward_pass_agrees(text):
    """A real forward pass through cvtool's own layers gives summarize()'s shapes and counts."""
    np = pytest.importorskip("numpy")
    model_mod = pytest.importorskip("cvtool.nn.model")
    specs = parse_spec(text)
    s = summary.summarize(specs, floor=True)
    model = model_mod.Sequential.from_spec(specs).build(np, "float64", seed=0)
    out = model.forward(np.zeros((2, *s["input_shape"])))
    assert out.shape[1:] == s["totals"]["output_shape"]
    n_params = sum(p.size for layer in model.layers for p in layer.params.values())
    assert n_params == s["totals"]["params"]
