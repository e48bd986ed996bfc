"""MACs and mult-adds: cvtool's count (weights only) and torchinfo's (weights + bias adds).

torchinfo 1.8.0's "Total mult-adds" counts, for a Conv2d, every parameter (bias
included) once per output position, and for a Linear or BatchNorm every
parameter once per sample, over the whole batch. cvtool's ``macs`` counts the
weight multiply-accumulates of one sample; ``mult_adds`` is torchinfo's count
for one sample. The VGG16 figures below are written out from the formulas.
"""

from __future__ import annotations

import json

import pytest

from cvtool import shapes, summary
from cvtool.nn.spec import parse_network, parse_spec

# VGG16 on 224x224x3, 'same' 3x3 convolutions: (output side, filters, input channels).
VGG16_CONVS = [
    (224, 64, 3), (224, 64, 64),
    (112, 128, 64), (112, 128, 128),
    (56, 256, 128), (56, 256, 256), (56, 256, 256),
    (28, 512, 256), (28, 512, 512), (28, 512, 512),
    (14, 512, 512), (14, 512, 512), (14, 512, 512),
]  # fmt: skip
VGG16_DENSE = [(7 * 7 * 512, 4096), (4096, 4096), (4096, 1000)]
VGG16 = (
    "input:224x224x3, "
    + ", ".join(
        f"conv:{f}x3:relu:p=same" + (", pool:2" if i in (1, 3, 6, 9, 12) else "")
        for i, (_, f, _) in enumerate(VGG16_CONVS)
    )
    + ", flatten, dense:4096:relu, dense:4096:relu, dense:1000:softmax"
)
# torchinfo's README ConvNet (its max-pools and relus are functional, not modules).
TORCHINFO_CONVNET = (
    "input:28x28x1, conv:10x5, maxpool:2, relu, conv:20x5, dropout:0.5, maxpool:2, relu, "
    "flatten, dense:50:relu, dropout:0.5, dense:10"
)


def test_vgg16_macs_and_mult_adds_from_the_formulas():
    conv_macs = sum(side * side * f * 3 * 3 * c for side, f, c in VGG16_CONVS)
    dense_macs = sum(n_in * units for n_in, units in VGG16_DENSE)
    bias_adds = sum(side * side * f for side, f, _ in VGG16_CONVS) + sum(
        units for _, units in VGG16_DENSE
    )
    assert conv_macs + dense_macs == 15_470_264_320  # the cvtool figure
    assert conv_macs + dense_macs + bias_adds == 15_483_821_032  # torchinfo 1.8.0's figure
    totals = summary.summarize(parse_spec(VGG16))["totals"]
    assert totals["macs"] == conv_macs + dense_macs
    assert totals["mult_adds"] == conv_macs + dense_macs + bias_adds


def test_mult_adds_of_single_layers():
    assert shapes.bias_adds((55, 55, 96)) == 55 * 55 * 96
    assert shapes.bias_adds((55, 55, 96), bias=False) == 0
    row = summary.layer_row(parse_spec("input:227x227x3, conv:96x11:s=4")[1], (227, 227, 3))
    assert row["mult_adds"] == row["macs"] + 55 * 55 * 96 == 105_415_200 + 290_400
    row = summary.layer_row(parse_spec("input:784, dense:30:bias=0")[1], (784,))
    assert row["mult_adds"] == row["macs"] == 784 * 30
    row = summary.layer_row(parse_spec("input:8x8x16, bn")[1], (8, 8, 16))
    assert (row["macs"], row["mult_adds"]) == (0, 2 * 16)  # torchinfo: gamma and beta
    row = summary.layer_row(parse_spec("input:8x8x16, maxpool:2")[1], (8, 8, 16))
    assert (row["macs"], row["mult_adds"]) == (0, 0)


def test_mult_adds_column_and_cli_total(cli):
    headers, rows = summary.summary_table(
        summary.summarize(parse_network("784,30,10")), summary.parse_columns("layer,mult_adds")
    )
    assert headers == ["Layer", "Mult-adds"]
    assert [r[1] for r in rows] == [0, 784 * 30 + 30, 30 * 10 + 10]
    doc = json.loads(cli("layer-calc", "net", "784,30,10", "--json").stdout)
    assert doc["totals"]["mult_adds"] == 784 * 30 + 30 + 30 * 10 + 10
    assert doc["totals"]["macs"] == 784 * 30 + 30 * 10


# ---------------------------------------------------------------- against torchinfo itself


def _torch_nets(torch):
    nn, F = torch.nn, torch.nn.functional

    class ConvNet(nn.Module):  # torchinfo's README example
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
            self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
            self.conv2_drop = nn.Dropout2d()
            self.fc1 = nn.Linear(320, 50)
            self.fc2 = nn.Linear(50, 10)

        def forward(self, x):
            x = F.relu(F.max_pool2d(self.conv1(x), 2))
            x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
            return self.fc2(F.relu(self.fc1(x.flatten(1))))

    mixed = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 6, 3, dilation=2, padding=2),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(5 * 5 * 6, 7, bias=False),
        nn.Linear(7, 5),
    )
    keras_course = nn.Sequential(
        nn.Conv2d(1, 64, 3),
        nn.Conv2d(64, 32, 3),
        nn.Conv2d(32, 32, 3),
        nn.Flatten(),
        nn.Linear(22 * 22 * 32, 64),
        nn.Linear(64, 10),
    )
    return [
        (ConvNet(), (1, 28, 28), parse_spec(TORCHINFO_CONVNET)),
        (
            mixed,
            (3, 19, 19),
            parse_spec(
                "input:19x19x3, conv:8x3:s=2:p=1:bias=0, bn, relu, conv:6x3:d=2:p=2, "
                "avgpool:2, flatten, dense:7:bias=0, dense:5"
            ),
        ),
        (keras_course, (1, 28, 28), parse_network("keras-course")),
    ]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_mult_adds_and_bytes_match_torchinfo(index):
    torch = pytest.importorskip("torch")
    torchinfo = pytest.importorskip("torchinfo")
    model, chw, specs = _torch_nets(torch)[index]
    batch = 3
    stats = torchinfo.summary(model, input_size=(batch, *chw), verbose=0, device="cpu")
    s = summary.summarize(specs, batch=batch)
    assert stats.total_params == s["totals"]["trainable"]  # torchinfo leaves out buffers
    assert stats.total_mult_adds == batch * s["totals"]["mult_adds"]
    assert stats.total_mult_adds > batch * s["totals"]["macs"]  # bias adds on top
    # Per layer: torchinfo's leaf modules that hold parameters, in order.
    theirs = [
        layer.macs // batch for layer in stats.summary_list if layer.is_leaf_layer and layer.macs
    ]
    ours = [r["mult_adds"] for r in s["rows"] if r["mult_adds"]]
    assert theirs == ours
    # Bytes agree (torchinfo leaves out batch-norm buffers); only the unit differs:
    # torchinfo's "MB" is 10^6 bytes, cvtool's MiB 2^20.
    buffers = 4 * s["totals"]["non_trainable"]
    assert stats.total_param_bytes == s["totals"]["param_bytes"]["float32"] - buffers
    assert torchinfo.ModelStatistics.to_megabytes(10**6) == 1.0
