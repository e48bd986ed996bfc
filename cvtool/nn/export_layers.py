"""One ONNX converter per cvtool layer, for :mod:`cvtool.nn.export`.

A converter ``fn(graph, layer, name)`` appends the layer's nodes to a
:class:`Graph`, reading its running tensor. Images enter NHWC (cvtool's layout)
and turn NCHW before the first layer that needs it (ONNX's Conv, ConvTranspose,
pooling, BatchNormalization and Resize are channels-first); they stay NCHW
through every later image layer, merges included, and go back to NHWC only
before a Flatten (so the flattened order is cvtool's (H, W, C)) or at the
output. ``Graph.layout`` tracks which: 'nhwc', 'nchw', or 'flat' for (N, D) rows.

Layer by layer:

- Dense -> Gemm; Conv2D -> Conv (kernels (K_h, K_w, C, F) transposed to
  (F, C, K_h, K_w));
- MaxPool2D -> MaxPool (padding cells -inf in both); AvgPool2D -> AveragePool
  with count_include_pad=1; L2Pool2D -> LpPool with p=2 (sqrt of the window's
  sum of squares, padding included; one node, equal to float32 rounding);
- BatchNorm -> BatchNormalization in inference mode (running mean and variance,
  cvtool's epsilon) on the channel axis 1 of NCHW, or of (N, D) rows;
- ConvTranspose2D -> ConvTranspose: cvtool's W (K_h, K_w, F, C) transposed to
  ONNX's (C, F, K_h, K_w), symmetric ``pads`` P and ``output_padding`` OP
  (ONNX's output size (H - 1) S + OP + K - 2P is cvtool's);
- UpSampling2D -> Resize with constant scales (1, 1, f_h, f_w): nearest is
  mode='nearest', coordinate_transformation_mode='asymmetric',
  nearest_mode='floor' (output i reads input floor(i / f) = i // f, cvtool's copy,
  exactly); bilinear is mode='linear', coordinate_transformation_mode='half_pixel'
  (source (i + 1/2) / f - 1/2, clamped at the border: PyTorch's
  align_corners=False, which cvtool implements; 'pytorch_half_pixel' differs
  only for an output of one pixel, and both match cvtool to float32 rounding);
- Tap -> no node: the running tensor's name (NCHW for an image) is kept;
  Concat -> Concat on axis 1 (channels of NCHW, features of rows), the running
  tensor first, as cvtool; Add -> Add;
- Dropout and the identity activation -> nothing; sigmoid, tanh, relu ->
  Sigmoid, Tanh, Relu; softmax -> Softmax on cvtool's last axis (axis 1 of an
  NCHW image: its channels).

Weights go out as float32 whatever the model's dtype.
"""

from __future__ import annotations

import numpy as np


class Graph:
    """Nodes and initialisers of the graph being built, and the running tensor.

    ``name`` is the running tensor ('input' at first); ``layout`` is 'nhwc' or
    'nchw' for images and 'flat' for (N, D) rows; ``taps`` maps a tap's name to
    its tensor and layout, for the merge that names it.
    """

    def __init__(self, helper, numpy_helper, input_shape):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits = [], []
        self.name = "input"
        self.layout = "nhwc" if len(input_shape) == 3 else "flat"
        self.taps: dict[str, tuple[str, str]] = {}
        self._count = 0

    def fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, array) -> str:
        name = self.fresh(stem)
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def add(self, op: str, inputs: list[str], stem: str, **attrs) -> str:
        """Append one node reading the running tensor (and constants); it becomes the running one."""
        out = self.fresh(stem)
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=out, **attrs))
        self.name = out
        return out

    def to_layout(self, layout: str) -> None:
        """Transpose the running image tensor to 'nchw' or 'nhwc' if it is not already."""
        if self.layout == layout:
            return
        assert self.layout in ("nhwc", "nchw"), f"cannot transpose a {self.layout} tensor"
        perm = [0, 3, 1, 2] if layout == "nchw" else [0, 2, 3, 1]
        self.add("Transpose", [self.name], f"to_{layout}", perm=perm)
        self.layout = layout

    def channels_first(self) -> None:
        """An image tensor to NCHW; (N, D) rows stay as they are (their axis 1 is the features)."""
        if self.layout != "flat":
            self.to_layout("nchw")


def _f32(xp_array) -> np.ndarray:
    from cvtool import backend

    return np.asarray(backend.to_numpy(xp_array), dtype=np.float32)


def _weights(g: Graph, layer, name: str, w: np.ndarray) -> list[str]:
    """[running tensor, W, b (if the layer has one)] as a Conv/Gemm node's inputs."""
    inputs = [g.name, g.const(f"{name}.W", w)]
    if "b" in layer.params:
        inputs.append(g.const(f"{name}.b", _f32(layer.params["b"])))
    return inputs


def _dense(g: Graph, layer, name: str) -> None:
    assert g.layout == "flat", f"{name}: dense layer on a {g.layout} tensor"
    g.add("Gemm", _weights(g, layer, name, _f32(layer.params["W"])), name)  # W (D, units)


def _conv(g: Graph, layer, name: str) -> None:
    g.to_layout("nchw")
    w = _f32(layer.params["W"]).transpose(3, 2, 0, 1)  # (K_h, K_w, C, F) -> (F, C, K_h, K_w)
    ph, pw = layer.pad
    g.add("Conv", _weights(g, layer, name, w), name, kernel_shape=list(layer.kernel),
          strides=[layer.stride] * 2, pads=[ph, pw, ph, pw],
          dilations=[layer.dilation] * 2)  # fmt: skip


def _deconv(g: Graph, layer, name: str) -> None:
    g.to_layout("nchw")
    w = _f32(layer.params["W"]).transpose(3, 2, 0, 1)  # (K_h, K_w, F, C) -> (C, F, K_h, K_w)
    p, op = layer.padding, layer.output_padding
    g.add("ConvTranspose", _weights(g, layer, name, w), name, kernel_shape=list(layer.kernel),
          strides=[layer.stride] * 2, pads=[p] * 4, output_padding=[op] * 2)  # fmt: skip


def _pool(g: Graph, layer, name: str) -> None:
    g.to_layout("nchw")
    p = layer.padding
    attrs = {"kernel_shape": list(layer.pool), "strides": list(layer.stride), "pads": [p] * 4}
    if layer.mode == "max":
        g.add("MaxPool", [g.name], name, **attrs)
    elif layer.mode == "avg":
        g.add("AveragePool", [g.name], name, count_include_pad=1, **attrs)
    else:  # l2: sqrt of the window's sum of squares, padding cells 0
        g.add("LpPool", [g.name], name, p=2, **attrs)


def _batchnorm(g: Graph, layer, name: str) -> None:
    g.channels_first()  # ONNX normalises axis 1: NCHW channels, or the features of rows
    p, s = layer.params, layer.state
    consts = [g.const(f"{name}.{k}", _f32(v)) for k, v in (("gamma", p["gamma"]),
              ("beta", p["beta"]), ("mean", s["running_mean"]), ("var", s["running_var"]))]  # fmt: skip
    g.add("BatchNormalization", [g.name, *consts], name, epsilon=float(layer.epsilon))


# UpSampling2D mode -> Resize attributes (see the module docstring for why these)
RESIZE_ATTRS = {
    "nearest": {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                "nearest_mode": "floor"},
    "bilinear": {"mode": "linear", "coordinate_transformation_mode": "half_pixel"},
}  # fmt: skip


def _upsample(g: Graph, layer, name: str) -> None:
    g.to_layout("nchw")
    scales = g.const(f"{name}.scales", np.array([1, 1, *layer.factor], dtype=np.float32))
    g.add("Resize", [g.name, "", scales], name, **RESIZE_ATTRS[layer.mode])  # no roi


def _tap(g: Graph, layer, name: str) -> None:
    """No node: the merge that names this tap reads the running tensor as it is now."""
    g.channels_first()  # merges join NCHW images
    g.taps[layer.name] = (g.name, g.layout)


def _merge(g: Graph, layer, name: str) -> None:
    g.channels_first()
    tapped, layout = g.taps[layer.name]
    assert layout == g.layout, f"{name}: a {g.layout} tensor merged with a {layout} one"
    if layer.kind == "concat":  # the running tensor's channels first, as cvtool
        g.add("Concat", [g.name, tapped], name, axis=1)
    else:
        g.add("Add", [g.name, tapped], name)


def _flatten(g: Graph, layer, name: str) -> None:
    if g.layout == "flat":
        return
    g.to_layout("nhwc")  # cvtool flattens in (H, W, C) order
    g.add("Flatten", [g.name], name, axis=1)  # (N, H*W*C)
    g.layout = "flat"


ACTIVATION_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softmax": "Softmax"}


def _activation(g: Graph, layer, name: str) -> None:
    if layer.name == "identity":
        return
    op = ACTIVATION_OPS[layer.name]
    if op == "Softmax":  # cvtool's last axis: features, or an image's channels
        g.add(op, [g.name], name, axis=1 if g.layout == "nchw" else -1)
    else:
        g.add(op, [g.name], name)


def _dropout(g: Graph, layer, name: str) -> None:
    """Inverted dropout is the identity at inference: no node."""


def converters() -> dict:
    """{layer class: converter} for every layer cvtool can export."""
    from cvtool.nn import conv, merge, norm, upsample
    from cvtool.nn import layers as L

    return {L.Dense: _dense, L.Activation: _activation, L.Flatten: _flatten,
            L.Dropout: _dropout, conv.Conv2D: _conv, conv.MaxPool2D: _pool,
            conv.AvgPool2D: _pool, conv.L2Pool2D: _pool, norm.BatchNorm: _batchnorm,
            upsample.ConvTranspose2D: _deconv, upsample.UpSampling2D: _upsample,
            merge.Tap: _tap, merge.Concat: _merge, merge.Add: _merge}  # fmt: skip
