"""From a parsed architecture spec to layer objects.

``build_layers(specs)`` maps each ``LayerSpec`` kind to a layer class through
one table; a dense or conv spec with an activation other than identity becomes
two layers (the parametrised layer, then an :class:`Activation`), so a
Keras-style summary lists them apart. Conv and pooling layers come from
:mod:`cvtool.nn.conv`, transposed convolution and upsampling from
:mod:`cvtool.nn.upsample`, batch normalisation from :mod:`cvtool.nn.norm`, skips
from :mod:`cvtool.nn.merge`. The 'input' item is not a layer: the model takes it
as its input shape (``split_input``).
"""

from __future__ import annotations

from cvtool.errors import CvtoolError
from cvtool.nn import conv, merge, norm, pool, upsample
from cvtool.nn import layers as L
from cvtool.nn.init import check_init

FACTORIES = {
    "dense": L.Dense.from_spec,
    "activation": L.Activation.from_spec,
    "flatten": L.Flatten.from_spec,
    "dropout": L.Dropout.from_spec,
    "conv": conv.Conv2D.from_spec,
    "pool": pool.pool_from_spec,
    "batchnorm": norm.BatchNorm.from_spec,
    "deconv": upsample.ConvTranspose2D.from_spec,
    "upsample": upsample.UpSampling2D.from_spec,
    "tap": lambda spec: merge.Tap(spec["name"]),
    "add": lambda spec: merge.Add(spec["name"]),
    "concat": lambda spec: merge.Concat(spec["name"]),
}


def split_input(specs: list) -> tuple[tuple[int, ...] | None, list]:
    """(input shape or None, the remaining specs)."""
    if specs and specs[0].kind == "input":
        return tuple(specs[0]["shape"]), list(specs[1:])
    return None, list(specs)


def build_layers(specs: list, init: str | None = None) -> list:
    """Layer objects for specs (an 'input' spec, if present, must be split off first).

    Parameters
    ----------
    specs : list of LayerSpec from ``cvtool.nn.spec``.
    init : initialiser name set on every layer that has an ``init`` attribute
        (Dense, Conv2D); None keeps each layer's default.
    """
    if init is not None:
        check_init(init)
    out, taps = [], {}
    for spec in specs:
        if spec.kind == "input":
            raise CvtoolError("'input:...' must come first in the spec.")
        factory = FACTORIES.get(spec.kind)
        if factory is None:
            raise CvtoolError(
                f"{spec.text or spec.kind!r}: layer-calc understands {spec.kind!r} but cvtool "
                f"cannot train it yet; trainable kinds: {', '.join(FACTORIES)}."
            )
        layer = factory(spec)
        if isinstance(layer, merge.Tap):
            taps[layer.name] = layer
        elif isinstance(layer, merge.Add | merge.Concat):
            layer.link(taps)  # skips join the tap of that name
        if init is not None and hasattr(layer, "init"):
            layer.init = init
        out.append(layer)
        act = spec.args.get("activation") if spec.kind in ("dense", "conv", "deconv") else None
        if act and act != "identity":
            out.append(L.Activation(act))
    return out
